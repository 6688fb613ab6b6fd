"""Figures as files: static PNGs (matplotlib) and interactive HTML (plotly), from arrays and curves.

Nothing here trains, reads storage or knows Optuna; callers pass data and a path.
Matplotlib is used through its object API (no pyplot state), so it is safe in
workers and tests without a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from mpl_toolkits.mplot3d.axes3d import Axes3D
from PIL import Image  # matplotlib's own dependency

DPI = 90
# One colour per digit, the same in every static and interactive scatter.
DIGIT_COLOURS = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]


def _save(fig: Figure, path: Path, *, gray: bool = False) -> Path:
    """``gray``: a figure of grey images and black text, stored as an 8-bit grey PNG (half the RGBA file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    if gray:
        with Image.open(path) as im:
            grey = im.convert("RGB").convert("L")
        grey.save(path, "PNG", optimize=True)
    return path


def scatter_png(points: np.ndarray, labels: np.ndarray, path: Path, *, title: str = "") -> Path:
    """2-D or 3-D scatter of ``points`` [N, 2|3], coloured by digit, with a legend."""
    dims = points.shape[1]
    if dims not in (2, 3):
        raise ValueError(f"a scatter needs 2 or 3 dimensions, got {dims}")
    fig = Figure(figsize=(6, 5.2))
    ax = fig.add_subplot(projection="3d" if dims == 3 else None)
    for digit in range(10):
        sel = labels == digit
        if not sel.any():
            continue
        p = points[sel]
        if isinstance(ax, Axes3D):
            ax.scatter(
                p[:, 0], p[:, 1], p[:, 2], s=4, alpha=0.7, color=DIGIT_COLOURS[digit], label=str(digit), linewidths=0
            )
        else:
            ax.scatter(p[:, 0], p[:, 1], s=4, alpha=0.7, color=DIGIT_COLOURS[digit], label=str(digit), linewidths=0)
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
    if isinstance(ax, Axes3D):
        ax.set_zlabel("component 3")
    ax.legend(title="digit", markerscale=3, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    ax.set_title(title)
    return _save(fig, path)


def scatter_figure(points: np.ndarray, labels: np.ndarray, *, title: str = "") -> Any:
    """The same scatter as an interactive plotly figure (one trace per digit, so the legend toggles them).

    A ``plotly.graph_objects.Figure`` (plotly ships no types, hence ``Any``)."""
    import plotly.graph_objects as go  # ~0.5 s: only the interactive (HTML) figures need plotly

    dims = points.shape[1]
    fig = go.Figure()
    for digit in range(10):
        sel = labels == digit
        if not sel.any():
            continue
        p = points[sel]
        common = dict(
            mode="markers", name=str(digit), marker=dict(size=3 if dims == 3 else 4, color=DIGIT_COLOURS[digit])
        )
        if dims == 3:
            fig.add_trace(go.Scatter3d(x=p[:, 0], y=p[:, 1], z=p[:, 2], **common))
        else:
            fig.add_trace(go.Scattergl(x=p[:, 0], y=p[:, 1], **common))
    fig.update_layout(title=title, legend_title_text="digit", width=750, height=600, template="plotly_white")
    return fig


def scatter_html(
    points: np.ndarray, labels: np.ndarray, path: Path, *, title: str = "", include_plotlyjs: bool | str = True
) -> Path:
    """An interactive HTML scatter that opens without the internet: plotly.js inlined (``True``), or
    ``"directory"``: one ``plotly.min.js`` beside the HTML files, shared by all of them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scatter_figure(points, labels, title=title).write_html(path, include_plotlyjs=include_plotlyjs, full_html=True)
    return path


def image_grid_png(
    images: np.ndarray, path: Path, *, ncols: int = 4, title: str = "", captions: list[str] | None = None
) -> Path:
    """Images [N, 28, 28] (values in [0, 1]) in a grid of ``ncols`` columns."""
    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig = Figure(figsize=(1.1 * ncols, 1.1 * nrows + (0.4 if title else 0)))
    for i in range(nrows * ncols):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=1)
            if captions:
                ax.set_title(captions[i], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def image_rows_png(rows: list[tuple[str, np.ndarray]], path: Path, *, title: str = "") -> Path:
    """Labelled rows of images, e.g. test images / reconstruction after epoch 1 / after the last epoch."""
    ncols = max(len(images) for _, images in rows)
    fig = Figure(figsize=(0.9 * ncols + 1.4, 0.95 * len(rows) + (0.4 if title else 0)))
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(images):
                ax.imshow(images[c], cmap="gray", vmin=0, vmax=1)
        axes[r][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path, gray=True)


EVAL_EPOCHS = "eval_epochs"  # the 0-based epochs at which a history's sparse series were measured


def curve_keys(history: dict[str, Any]) -> list[str]:
    """The series of an export's history worth plotting (every list of numbers but the timings and epoch indices)."""
    return [
        k
        for k, v in history.items()
        if k not in ("seconds", EVAL_EPOCHS)
        and isinstance(v, list)
        and v
        and all(isinstance(x, (int, float)) for x in v)
    ]


def history_png(
    history: dict[str, Any], path: Path, *, title: str = "", evaluated: dict[str, str] | None = None
) -> Path:
    """Per-epoch curves: losses (left), any other per-epoch series, e.g. accuracy (middle), and sparse scores (right).

    ``evaluated`` names the series measured only at the epochs in ``history["eval_epochs"]``
    (name -> axis label): each is drawn as markers at those epochs, on its own y axis.
    Every line is labelled with its key, which says what it measured (e.g. ``test_loss``).
    """
    evaluated = {k: v for k, v in (evaluated or {}).items() if k in history and history[k]}
    keys = [k for k in curve_keys(history) if k not in evaluated]
    if not keys and not evaluated:
        raise ValueError("the history holds no per-epoch series")
    if evaluated and len(history.get(EVAL_EPOCHS, [])) != max(len(history[k]) for k in evaluated):
        raise ValueError(f"{', '.join(evaluated)} need their epochs in history[{EVAL_EPOCHS!r}]")
    losses = [k for k in keys if "loss" in k or "mse" in k]
    others = [k for k in keys if k not in losses]
    panels = [p for p in (losses, others) if p] + ([list(evaluated)] if evaluated else [])
    fig = Figure(figsize=(5.5 * len(panels), 3.8))
    for i, group in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        if evaluated and group == list(evaluated):
            x = [e + 1 for e in history[EVAL_EPOCHS]]
            handles: list[Line2D] = []
            for j, k in enumerate(group):
                axis = ax if j == 0 else ax.twinx()
                if j > 1:
                    axis.spines["right"].set_position(("axes", 1 + 0.18 * (j - 1)))
                handles += axis.plot(
                    x,
                    history[k],
                    linestyle="none",
                    marker="os^v"[j % 4],
                    ms=5,
                    color=f"C{j + 2}",
                    label=f"{k} (at {len(x)} evaluated epochs)",
                )
                axis.set_ylabel(evaluated[k], color=f"C{j + 2}")
            ax.legend(handles, [str(h.get_label()) for h in handles], fontsize=8)
            ax.set_title("scored at the evaluated epochs", fontsize=9)
        else:
            for k in group:
                values = history[k]
                ax.plot(range(1, len(values) + 1), values, marker="o" if len(values) < 15 else None, ms=3, label=k)
            ax.set_ylabel("loss" if group is losses else "value")
            ax.legend()
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def confusion_png(matrix: np.ndarray, path: Path, *, title: str = "") -> Path:
    """A 10 x 10 confusion matrix (rows: true digit, columns: predicted) with counts in the cells."""
    m = np.asarray(matrix)
    fig = Figure(figsize=(5, 4.5))
    ax = fig.add_subplot()
    im = ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(m.shape[1]))
    ax.set_yticks(range(m.shape[0]))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, str(int(v)), ha="center", va="center", fontsize=6, color="white" if v > m.max() / 2 else "black")
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    return _save(fig, path)


def confusion_figure(matrix: list[list[int]], accuracy: float, path: Path) -> Path:
    """The classifier export's confusion matrix, titled with its test accuracy (the report's Figure 5b)."""
    return confusion_png(np.asarray(matrix), path, title=f"Confusion matrix: test accuracy {100 * accuracy:.2f}%")


def wide_range(values: np.ndarray, ratio: float = 5.0) -> bool:
    """Whether positive values span ``ratio`` or more, so that a log axis shows the small ones apart
    (model sizes: the front's 17k-24k parameters beside trials of 150k)."""
    values = np.asarray(values, dtype=float)
    return values.size > 0 and values.min() > 0 and values.max() / values.min() >= ratio


def _log_axis(ax: Axes, axis: Axis) -> None:
    """A log axis labelled in plain numbers (20,000, not 2×10⁴), at 1, 2, 3 and 5 of each decade."""
    (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
    plain = ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}")
    axis.set_major_formatter(plain)
    axis.set_minor_formatter(ticker.FuncFormatter(lambda v, _: plain(v) if f"{v:e}"[0] in "235" else ""))


def pareto_png(
    points: np.ndarray,
    front: np.ndarray,
    path: Path,
    *,
    labels: tuple[str, str],
    numbers: npt.ArrayLike | None = None,
    title: str = "",
) -> Path:
    """Two objectives of every trial [N, 2], the Pareto front (boolean mask ``front``) highlighted and joined."""
    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot()
    ax.scatter(
        points[~front][:, 0], points[~front][:, 1], s=14, color="#9a9a9a", alpha=0.7, label="other trials", linewidths=0
    )
    order = np.argsort(points[front][:, 0])
    ax.plot(*points[front][order].T, "-o", color="#d62728", markersize=5, label="Pareto front")
    if numbers is not None:
        # neighbours on the front are often a pixel apart: their labels go above and below in turn
        for i, ((x, y), n) in enumerate(zip(points[front][order], np.asarray(numbers)[front][order])):
            ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(4, 4 if i % 2 == 0 else -11), fontsize=7)
    for axis, values in ((ax.xaxis, points[:, 0]), (ax.yaxis, points[:, 1])):
        if wide_range(values):
            _log_axis(ax, axis)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.legend(frameon=False)
    ax.set_title(title)
    return _save(fig, path)
