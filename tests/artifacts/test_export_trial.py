"""Exporting a chosen trial, not only the best: ``export --trial N`` and ``export_best(name, trial=N)``."""

import json

import optuna
import pytest

from mnist_hpo import export_study_trial
from mnist_hpo.artifacts.export import export_best
from mnist_hpo.cli import main
from mnist_hpo.hpo.queries import best_trial
from mnist_hpo.hpo.run import run_study
from mnist_hpo.storages import load_existing_study

from ..conftest import storage_snapshot


def _one_line(capsys, argv, expected):
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("mnist-hpo: error: "), err
    assert expected in lines[0] and "Traceback" not in err


@pytest.fixture
def finished(ae_cfg, tiny, storage):
    """Study ae-test with 3 complete trials and one failed; returns (storage, a complete trial that is not the best)."""
    study = run_study(ae_cfg, storage_url=storage, data=tiny, progress=False)
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    best = best_trial(study).number
    other = next(t.number for t in study.trials if t.state.name == "COMPLETE" and t.number != best)
    return storage, other


def test_export_a_chosen_trial_from_the_command_line(finished, capsys, tmp_path):
    storage, other = finished
    code = main(["export", "ae-test", "--trial", str(other), "--storage", storage, "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and f"exported trial {other} of ae-test" in out
    meta = json.loads((tmp_path / "storage" / "exports" / "ae-test" / f"trial-{other}" / "export.json").read_text())
    assert meta["trial"] == other
    trial = load_existing_study("ae-test", storage).trials[other]
    assert meta["params"] == trial.params and meta["metrics"]["val_mse"] == trial.value


def test_export_a_chosen_trial_from_python(finished, tiny):
    storage, other = finished
    folder = export_best("ae-test", storage_url=storage, data=tiny, progress=False, trial=other)
    assert folder.name == f"trial-{other}"
    again = export_study_trial("ae-test", other, storage_url=storage, data=tiny, progress=False)
    assert again == folder


def test_a_missing_or_unfinished_trial_is_one_error_line(finished, capsys, tmp_path):
    storage, _ = finished
    before = storage_snapshot(storage)
    _one_line(capsys, ["export", "ae-test", "--trial", "42", "--storage", storage], "has no trial 42")
    _one_line(capsys, ["export", "ae-test", "--trial", "3", "--storage", storage], "trial 3 of study 'ae-test' is FAIL")
    assert storage_snapshot(storage) == before
    assert not (tmp_path / "storage" / "exports").exists()
