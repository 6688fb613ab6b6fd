"""What each protocol buys: anytime curves, epochs and time to a target, and `mnist-hpo compare`."""

from __future__ import annotations

import datetime as dt

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from mnist_hpo import cli
from mnist_hpo.analysis.anytime import load_curves, median_curve, protocol_of, study_curve
from mnist_hpo.hpo.run import run_study
from mnist_hpo.hpo.samplers import make_sampler
from mnist_hpo.storages import Studies, open_storage

from ..conftest import STUDIES

T0 = dt.datetime(2024, 1, 1, 12, 0, 0)


def fake_study(url: str, name: str, trials: list[tuple], *, sampler="tpe", pruner="successive_halving") -> optuna.Study:
    """``trials``: (state, final value or None, reported epoch values, start s, end s), added in this order."""
    study = optuna.create_study(study_name=name, storage=open_storage(url))
    study.set_user_attr("identity", {"sampler.type": sampler, "pruner.type": pruner})
    for state, value, curve, start, end in trials:
        t = optuna.create_trial(state=state, value=value, intermediate_values=dict(enumerate(curve)))
        t.datetime_start, t.datetime_complete = T0 + dt.timedelta(seconds=start), T0 + dt.timedelta(seconds=end)
        study.add_trial(t)
    return study


C, P = TrialState.COMPLETE, TrialState.PRUNED
# Trial 1 finishes before trial 0 (two workers): the curve follows the completion order.
TPE_TRIALS = [
    (C, 0.0300, [0.05] * 10, 0, 100),  # 10 epochs, 100 s; finishes second
    (P, None, [0.06] * 3, 10, 40),  # pruned after 3 epochs, 30 s; finishes first
    (C, 0.0170, [0.03] * 10, 100, 200),  # reaches 0.0172 here: 23 epochs, 230 s
    (C, 0.0160, [0.02] * 10, 200, 300),
]
RANDOM_TRIALS = [(C, 0.0500, [0.06] * 50, 0, 500), (C, 0.0180, [0.02] * 50, 500, 1000)]


def test_curve_counts_epochs_and_busy_time_in_completion_order(storage):
    c = study_curve(fake_study(storage, "tpe-a", TPE_TRIALS))
    assert c.epochs == [3, 13, 23, 33]
    assert c.seconds == [30.0, 130.0, 230.0, 330.0]
    assert c.best == [np.inf, 0.03, 0.017, 0.016]
    i = c.reached(0.0172)
    assert (c.epochs[i], c.seconds[i]) == (23, 230.0)
    assert c.reached(0.01) is None
    assert c.protocol == "tpe + successive_halving"


def test_a_dead_processs_trial_counts_until_its_last_heartbeat(storage):
    # Killed 50 s in, marked FAIL when the study was opened again 10 h later.
    study = fake_study(storage, "killed", [(C, 0.03, [0.05] * 10, 0, 100)])
    beat = (T0 + dt.timedelta(seconds=150)).timestamp()
    t = optuna.create_trial(
        state=TrialState.FAIL,
        intermediate_values={0: 0.06, 1: 0.06},
        user_attrs={"owner": {"host": "h", "pid": 1, "beat": beat}},
    )
    t.datetime_start, t.datetime_complete = T0 + dt.timedelta(seconds=100), T0 + dt.timedelta(seconds=36100)
    study.add_trial(t)
    assert study_curve(study).seconds == [100.0, 150.0]
    # Without a heartbeat (a trial of another storage) its stored duration counts.
    other = fake_study(storage, "failed", [(TrialState.FAIL, None, [0.06], 0, 70)])
    assert study_curve(other).seconds == [70.0]


def test_protocol_from_the_creation_config(storage):
    study = optuna.create_study(study_name="old", storage=open_storage(storage))
    study.set_user_attr("config", {"sampler": {"type": "random", "options": {}}, "pruner": {"type": "none"}})
    assert protocol_of(study) == "random + none"


def test_a_population_counts_the_epochs_its_segments_cover(storage):
    # a GAN's segments of 5 epochs report one value each (scored at the segment's end): 5 epochs, not 1
    study = fake_study(storage, "gan-pbt", [(C, 60.0, [60.0], 0, 50), (C, 50.0, [50.0], 50, 100)])
    study.set_user_attr("identity", {"sampler.type": "random", "pruner.type": "none", "pbt.population": 2})
    plain = study_curve(study)
    assert plain.protocol == "pbt (2 members)" and plain.epochs == [1, 2]  # without the segments' records
    segments = fake_study(storage, "gan-pbt-2", [])
    segments.set_user_attr("identity", {"pbt.population": 2})
    for i, value in enumerate([60.0, 50.0]):
        t = optuna.create_trial(
            state=C,
            value=value,
            intermediate_values={5 * i + 4: value},
            user_attrs={"pbt": {"member": i, "generation": 0, "epochs": [0, 5]}},
        )
        t.datetime_start, t.datetime_complete = T0, T0 + dt.timedelta(seconds=50 * (i + 1))
        segments.add_trial(t)
    assert study_curve(segments).epochs == [5, 10]


def test_median_of_a_protocol(storage):
    a = study_curve(fake_study(storage, "a", [(C, 0.03, [0.1] * 10, 0, 10), (C, 0.02, [0.1] * 10, 10, 20)]))
    b = study_curve(fake_study(storage, "b", [(C, 0.05, [0.1] * 5, 0, 10), (C, 0.01, [0.1] * 20, 10, 20)]))
    grid, med = median_curve([a, b], "epochs")
    # b ends at 25 epochs, a at 20: the median stops where both have data; at 20, b is still at 0.05.
    assert grid.tolist() == [5, 10, 20] and med.tolist() == pytest.approx([np.inf, 0.04, 0.035])


def test_compare_prints_epochs_and_time_to_target_and_draws(storage, tmp_path, capsys):
    from PIL import Image

    fake_study(storage, "ae-tpe", TPE_TRIALS)
    fake_study(storage, "ae-tpe-2021", TPE_TRIALS[:2])
    fake_study(storage, "ae", RANDOM_TRIALS, sampler="random", pruner="none")
    out = tmp_path / "cmp.png"
    assert cli.main(["compare", "ae-tpe", "ae-tpe-2021", "ae", "--storage", storage, "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split() for line in lines[2:5]}
    assert rows["ae-tpe"][4:] == ["4", "23", "3.8", "min", "0.0160", "33", "5.5", "min"]
    assert rows["ae-tpe-2021"][4:] == ["2", "not", "reached", "not", "reached", "0.0300", "13", "2.2", "min"]
    assert rows["ae"][4:] == ["2", "not", "reached", "not", "reached", "0.0180", "100", "16.7", "min"]
    # Per protocol, medians over its studies: ae-tpe-2021 never reached 0.0172, so with 1 of 2 the
    # median is "not reached" (a late study counts as infinitely late, not left out).
    protocols = {line.split("  ")[0].strip(): line.split() for line in lines[8:10]}
    assert protocols["tpe + successive_halving"][3:] == [
        "2",
        "1",
        "of",
        "2",
        "not",
        "reached",
        "0.0230",
        "23",
        "3.8",
        "min",
    ]
    assert protocols["random + none"][3:] == ["1", "0", "of", "1", "not", "reached", "0.0180", "100", "16.7", "min"]
    assert lines[-1] == f"wrote {out}"
    pixels = np.asarray(Image.open(out).convert("RGB")).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 100


def test_the_time_panel_is_in_hours_for_a_long_study_and_in_minutes_otherwise(storage, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from mnist_hpo.analysis import anytime

    shown = []

    class Kept(Figure):  # keep the figures to look at
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            shown.append(self)

    monkeypatch.setattr(anytime, "Figure", Kept)
    short = study_curve(fake_study(storage, "short", TPE_TRIALS))  # 330 s
    anytime.compare_figure([short], tmp_path / "a.png")
    slow = [(C, 0.02, [0.05] * 50, 0, 3 * 3600), (C, 0.018, [0.04] * 50, 3 * 3600, 6 * 3600)]
    long = study_curve(fake_study(storage, "long", slow, sampler="random", pruner="none"))  # 6 h
    anytime.compare_figure([short, long], tmp_path / "b.png")
    (a, b) = [fig.axes[1] for fig in shown]
    assert a.get_xlabel().startswith("trial time (min,") and b.get_xlabel().startswith("trial time (h,")
    assert max(max(line.get_xdata()) for line in a.get_lines() if len(line.get_xdata()) > 1) == pytest.approx(5.5)
    assert max(max(line.get_xdata()) for line in b.get_lines() if len(line.get_xdata()) > 1) == pytest.approx(6.0)


def test_compare_reads_a_folder_of_journals(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MNIST_HPO_STORAGE_DIR", str(tmp_path / "storage"))
    journals = tmp_path / "journals"
    journals.mkdir()
    fake_study(f"journal:{journals / 'ae-tpe.log'}", "ae-tpe", TPE_TRIALS)
    fake_study(f"journal:{journals / 'ae.log'}", "ae", RANDOM_TRIALS, sampler="random", pruner="none")
    assert cli.main(["compare", "ae-tpe", "ae", "--journals", str(journals), "--target", "0.02"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "storage" / "compare.png").exists()
    # At 0.02 the random search gets there with its second trial: 100 epochs, 1000 s.
    assert "not reached" not in out and "16.7 min" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["compare", "nope"], "no study 'nope' in"),
        (["compare", "a", "a"], "study 'a' is named twice"),
        (["compare", "a", "--out", "x.pdf"], "--out x.pdf: expected a .png file name"),
        (["compare", "a", "--target", "nan"], "--target nan: expected a finite number"),
    ],
)
def test_compare_user_errors(storage, tmp_path, capsys, argv, message):
    from ..conftest import storage_snapshot

    fake_study(storage, "a", RANDOM_TRIALS)
    before = storage_snapshot(storage)
    assert cli.main([*argv, "--storage", storage]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mnist-hpo: error: ") and message in err and len(err.strip().splitlines()) == 1
    assert storage_snapshot(storage) == before


def test_compare_missing_journals_folder(tmp_path, capsys):
    assert cli.main(["compare", "a", "--journals", str(tmp_path / "none")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_load_curves_keeps_the_order_given(storage):
    fake_study(storage, "z", RANDOM_TRIALS)
    fake_study(storage, "y", TPE_TRIALS)
    assert [c.study for c in load_curves(["z", "y"], Studies(storage))] == ["z", "y"]


def test_report_shows_importance_latent_table_and_anytime_figure(storage, tmp_path):
    """Two autoencoder studies: each gets its importance figure and latent table, and both one anytime figure."""
    import re

    from optuna.distributions import CategoricalDistribution

    from mnist_hpo.report.build import build_report

    space = {"latent_dim": CategoricalDistribution([2, 9]), "weight_decay": CategoricalDistribution([0.0, 1e-3])}
    for name, sampler, pruner in (("ae", "random", "none"), ("ae-tpe", "tpe", "successive_halving")):
        study = fake_study(storage, name, [], sampler=sampler, pruner=pruner)
        study.set_user_attr("model", "autoencoder")
        for i in range(6):
            params = {"latent_dim": [2, 9][i % 2], "weight_decay": [0.0, 1e-3][i // 3]}
            value = 0.067 if params["weight_decay"] else 0.02 - 0.0005 * params["latent_dim"]
            t = optuna.create_trial(params=params, distributions=space, value=value, intermediate_values={0: value})
            t.datetime_start, t.datetime_complete = (
                T0 + dt.timedelta(seconds=10 * i),
                T0 + dt.timedelta(seconds=10 * i + 5),
            )
            study.add_trial(t)
    few = fake_study(storage, "dae", RANDOM_TRIALS, sampler="random", pruner="none")
    few.set_user_attr("model", "denoising")
    html_path, md_path = build_report(storage, out=tmp_path / "r" / "report.html")
    md = md_path.read_text()
    assert "Parameter importance in study 'ae', on its 6 complete trials" in md
    assert "Parameter importance in study 'ae-tpe', on its 6 complete trials" in md
    assert "2 complete trials, too few to rank the parameters" in md  # the denoising study
    assert "| 9 | 0.0155 | 1 | 3 | 0 |" in md  # latent 9: the best of trials 1, 3 (0.0155) and 5 (0.067)
    assert "What each protocol buys" in md and "anytime.png" in md
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert links == [
        "report-figures/importance-ae.png",
        "report-figures/importance-ae-tpe.png",
        "report-figures/anytime.png",
    ]
    assert all((md_path.parent / link).exists() for link in links)
    html = html_path.read_text()
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', html)) == 3


def test_ae_gp_study_file_validates_and_runs(storage, tiny):
    """The shipped ae-gp: the GP sampler over the report's mixed (categorical) space, 2 trials x 1 epoch."""
    import dataclasses

    from mnist_hpo.config import load_study_config
    from mnist_hpo.core.schema import SamplerConfig

    cfg = load_study_config(STUDIES / "ae-gp.toml")
    assert (cfg.sampler.type, cfg.pruner.type, cfg.name) == ("gp", "successive_halving", "ae-gp")
    small = cfg.with_overrides(name="ae-gp-test", trials=2, epochs=1, train_subset=600, test_subset=200, batch_size=128)
    # One random start, so the second trial is the Gaussian process's own proposal.
    small = dataclasses.replace(small, sampler=SamplerConfig("gp", {**small.sampler.options, "n_startup_trials": 1}))
    study = run_study(small, storage_url=storage, data=tiny, progress=False)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert isinstance(make_sampler(small, {}), optuna.samplers.GPSampler)
    assert protocol_of(study) == "gp + successive_halving"


def test_a_study_of_enqueued_configurations_only_is_no_search(storage):
    from mnist_hpo.analysis.anytime import searched

    study = fake_study(storage, "search", RANDOM_TRIALS, sampler="random", pruner="none")
    assert searched(study)
    check = optuna.create_study(study_name="check", storage=open_storage(storage))
    check.enqueue_trial({"x": 1.0})
    check.optimize(lambda t: t.suggest_float("x", 0, 2), n_trials=1)
    assert not searched(check)
    check.optimize(lambda t: t.suggest_float("x", 0, 2), n_trials=1)  # now the sampler proposed one
    assert searched(check)
