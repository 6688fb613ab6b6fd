"""The figure of a population-based study: each mutable hyperparameter over the epochs, and the metric.

One panel per mutable parameter, then one for the metric. Each member is a thin line (its
segments' values, epoch by epoch); the best member's lineage (the segments its final weights
grew from) is the thick line; every exploit is a marker where the member took another's
weights, saying whose. Plotly, so the dashboard shows it on the study's page (optuna-dashboard's
``save_plotly_graph_object``) and its HTML opens in a browser.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from ...core.figures import DIGIT_COLOURS
from ...core.pbt import pbt_settings
from ...core.schema import ParamSpec, StudyConfig
from ...core.space import resolve_space
from ._lineage import lineage
from ._records import PBT, Population

GRAPH_ID = "pbt-schedule"  # the figure's id on the study's dashboard page (a new figure replaces it)


def _param(name: str) -> Callable[[FrozenTrial], Any]:
    """A segment's value of hyperparameter ``name``."""
    return lambda t: t.params[name]


def _steps(segments: list[FrozenTrial], value: Callable[[FrozenTrial], Any]) -> tuple[list[float | None], list[Any]]:
    """x (epochs, 1-based) and y of a step line through ``segments``: ``value(trial)`` over each one's epochs."""
    xs: list[float | None] = []
    ys: list[Any] = []
    for t in segments:
        first, stop = t.user_attrs[PBT]["epochs"]
        xs += [first + 0.5, stop + 0.5, None]
        ys += [value(t)] * 2 + [None]
    return xs, ys


def _curve(segments: list[FrozenTrial], *, lineage: bool = False) -> tuple[list[float | None], list[float | None]]:
    """The metric at every epoch it was reported, along ``segments``; a member's line breaks where it took
    another's weights (a lineage's does not: its weights go on)."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    for t in segments:
        if xs and t.user_attrs[PBT].get("exploited") and not lineage:
            xs.append(None)
            ys.append(None)
        for epoch, value in sorted(t.intermediate_values.items()):
            xs.append(epoch + 1)
            ys.append(value)
    return xs, ys


def _exploit_marks(jumps: list[FrozenTrial], name: str, metric: str) -> tuple[list[float | None], list[Any]]:
    """Where each exploit shows: at its first reported value (the metric), or where its parameter changed."""
    if name == metric:
        firsts = [min(t.intermediate_values.items()) if t.intermediate_values else (None, None) for t in jumps]
        return [None if e is None else e + 1 for e, _ in firsts], [v for _, v in firsts]
    return [t.user_attrs[PBT]["epochs"][0] + 0.5 for t in jumps], [t.params[name] for t in jumps]


def _member_traces(go: Any, m: int, segments: list[FrozenTrial], name: str, metric: str, legend: bool) -> list[Any]:
    """Member ``m``'s line for ``name`` (a hyperparameter, or the metric) and a mark at each of its exploits."""
    colour = DIGIT_COLOURS[m % len(DIGIT_COLOURS)]
    xs, ys = _curve(segments) if name == metric else _steps(segments, _param(name))
    line = go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        line={"width": 1, "color": colour},
        opacity=0.6,
        name=f"member {m}",
        legendgroup=f"member {m}",
        showlegend=legend,
    )
    jumps = [t for t in segments if t.user_attrs[PBT].get("exploited")]
    said = [
        f"member {m} took member {t.user_attrs[PBT]['parent_member']}'s weights (trial {t.user_attrs[PBT]['parent']}) "
        f"after epoch {t.user_attrs[PBT]['epochs'][0]}"
        for t in jumps
    ]
    xs, ys = _exploit_marks(jumps, name, metric)
    marks = go.Scatter(
        x=xs,
        y=ys,
        mode="markers",
        marker={"symbol": "x", "size": 9, "color": colour},
        legendgroup=f"member {m}",
        showlegend=False,
        hovertext=said,
    )
    return [line, marks]


def schedule_figure(cfg: StudyConfig, trials: list[FrozenTrial], best: FrozenTrial, metric: str) -> Any:
    """The figure (see the module docstring) of a population whose best member's last segment is ``best``."""
    import plotly.graph_objects as go  # ~0.5 s: only an export draws it, not the workers that train
    from plotly.subplots import make_subplots

    population = Population(cfg, trials)
    rows = [*pbt_settings(cfg).mutable, metric]
    fig = make_subplots(rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=0.04, subplot_titles=rows)
    space = resolve_space(cfg.space, cfg.seed)
    members = {
        m: [
            t
            for g in range(population.generations)
            if (t := population.canonical(m, g)) is not None and PBT in t.user_attrs and "epochs" in t.user_attrs[PBT]
        ]
        for m in range(population.size)
    }
    chain = lineage(trials, best)
    for row, name in enumerate(rows, start=1):
        for m, segments in members.items():
            for trace in _member_traces(go, m, segments, name, metric, legend=row == 1):
                fig.add_trace(trace, row, 1)
        xs, ys = _curve(chain, lineage=True) if name == metric else _steps(chain, _param(name))
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                line={"width": 4, "color": "black"},
                name=f"best: member {best.user_attrs[PBT]['member']}'s lineage",
                legendgroup="best",
                showlegend=row == 1,
            ),
            row,
            1,
        )
        if name != metric and isinstance(spec := space[name], ParamSpec) and spec.log:
            fig.update_yaxes(type="log", row=row, col=1)
    fig.update_xaxes(title_text="epoch", row=len(rows), col=1)
    fig.update_layout(
        title=f"study {cfg.name}: population-based training (x: a member took another's weights)",
        height=260 * len(rows) + 120,
        width=900,
        template="plotly_white",
    )
    return fig


def attach_figure(study: optuna.Study, fig: Any, folder: Path) -> Path:
    """Write ``fig`` as ``pbt-schedule.html`` in ``folder``, and put it on the study's dashboard page."""
    path = folder / "pbt-schedule.html"
    fig.write_html(path, include_plotlyjs="cdn", full_html=True)
    try:
        from optuna_dashboard import save_plotly_graph_object  # the optional 'dashboard' extra
    except ImportError:
        return path  # without it there is no dashboard to show the figure; the HTML file still is
    save_plotly_graph_object(study, fig, graph_object_id=GRAPH_ID)
    return path
