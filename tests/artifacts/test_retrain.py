"""The export's retrain off the mean-image plateau: next seeds, then next-best trials, each attempt recorded.

A fake task stands in for training: it reports a loss per epoch that depends on the trial and the
seed, so which attempts stick is set by the test. The policy is :mod:`mnist_hpo.artifacts.retrain`.
"""

from __future__ import annotations

import json

import optuna
import pytest
from optuna.distributions import IntDistribution

from mnist_hpo.artifacts import retrain as retraining
from mnist_hpo.measures import mean_image as plateau
from mnist_hpo.tasks import FitResult

BASELINE = 0.0675  # the mean image's test MSE; stuck means >= 0.85 of it
STUCK, GOOD = 0.066, 0.02


class FakeData:
    train_images = range(60_000)

    def subset(self, *sizes):
        return self


class Model:
    def __init__(self, loss: float) -> None:
        self.loss = loss


class FakeTask:
    """Trains nothing: each epoch reports ``STUCK`` for the (trial, seed) pairs in ``stuck``, else ``GOOD``."""

    device = "cpu"

    def __init__(self, stuck: set[tuple[int, int]]) -> None:
        self.stuck, self.epochs = stuck, []

    def fit(self, params, *, seed, epochs, full, on_epoch=None):
        loss = STUCK if (params["id"], seed) in self.stuck else GOOD
        for epoch in range(epochs):
            self.epochs.append((params["id"], seed, epoch))
            on_epoch(epoch, loss, loss)
        return FitResult(
            model=Model(loss), value=loss, history={"train_loss": [loss] * epochs, "val_loss": [loss] * epochs}
        )

    def test(self, model):
        return {"test_mse": model.loss}


def _study(values: list[float], left_at: int = 3) -> optuna.Study:
    """Trials 0.. with these values, seed 100*k, each leaving the plateau on its split at epoch ``left_at``."""
    study = optuna.create_study()
    curve = {e: (0.067 if e + 1 < left_at else 0.03) for e in range(20)}
    for k, value in enumerate(values):
        study.add_trial(
            optuna.trial.create_trial(
                params={"id": k},
                distributions={"id": IntDistribution(0, 99)},
                value=value,
                intermediate_values=curve,
                user_attrs={"seed": 100 * k},
            )
        )
    return study


@pytest.fixture
def cfg(ae_cfg, monkeypatch):
    monkeypatch.setattr(plateau, "mean_image_test_mse", lambda data: BASELINE)
    return ae_cfg.with_overrides(
        name="retrain-test", epochs=20, batch_size=256
    )  # 235 steps an epoch: 9 epochs to judge


def _retrain(study, cfg, task, trial=None, best=True):
    trial = trial or study.best_trial
    return retraining.retrain(study, trial, cfg, FakeData(), task, progress=False, best=best)


def test_a_retrain_off_the_plateau_is_the_report_protocol_alone(cfg):
    study, task = _study([0.02, 0.03]), FakeTask(stuck=set())
    done = _retrain(study, cfg, task)
    assert (done.trial.number, done.seed) == (0, 0)
    assert "attempts" not in done.record and "fallback" not in done.record
    assert done.record["on_plateau"] is False and len(task.epochs) == 20


def test_a_stuck_retrain_is_given_up_early_and_the_next_seed_taken(cfg, capsys):
    study, task = _study([0.02, 0.03]), FakeTask(stuck={(0, 0)})
    done = _retrain(study, cfg, task)
    assert (done.trial.number, done.seed) == (0, 1)
    # Given up after max(2 x 3 epochs to leave it on its split, 9 epochs to judge) = 9 epochs, not 20.
    assert [a["epochs"] for a in done.record["attempts"]] == [9, 20]
    assert done.record["attempts"][0] == {"trial": 0, "seed": 0, "epochs": 9, "test_mse": STUCK, "on_plateau": True}
    assert done.record["fallback"] == {"from_trial": 0, "from_seed": 0}
    assert len(task.epochs) == 9 + 20
    assert capsys.readouterr().err.count("given up") == 1


def test_every_seed_stuck_falls_back_to_the_next_best_trial(cfg, capsys):
    study, task = _study([0.03, 0.02, 0.04]), FakeTask(stuck={(1, 100), (1, 101), (1, 102)})
    done = _retrain(study, cfg, task)
    assert done.trial.number == 0 and done.seed == 0  # trial 1 is the best; trial 0 the next
    assert [(a["trial"], a["seed"]) for a in done.record["attempts"]] == [(1, 100), (1, 101), (1, 102), (0, 0)]
    assert done.record["fallback"]["from_trial"] == 1
    retraining.say_outcome(study, study.best_trial, done)
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("mnist-hpo: the retrain of ") and "exported trial 0 with seed 0" in err


def test_a_trial_asked_for_by_number_keeps_its_number(cfg):
    study, task = _study([0.03, 0.02]), FakeTask(stuck={(0, 0), (0, 1), (0, 2)})
    done = _retrain(study, cfg, task, trial=study.trials[0], best=False)
    assert done.trial.number == 0 and len(done.record["attempts"]) == 3
    assert done.record["on_plateau"] is True  # every seed stuck: the first attempt, trained to the end
    assert done.seed == 0 and len(done.result.history["train_loss"]) == 20


def test_a_trial_that_never_left_the_plateau_is_retrained_once(cfg):
    study, task = _study([0.066], left_at=99), FakeTask(stuck={(0, 0)})
    done = _retrain(study, cfg, task)
    assert done.record["on_plateau"] is True and "attempts" not in done.record
    assert len(task.epochs) == 20


def test_other_families_are_retrained_once(cfg):
    study, task = _study([0.02]), FakeTask(stuck={(0, 0)})
    done = _retrain(study, cfg.with_overrides(name="retrain-clf", model="classifier"), task)
    assert "attempts" not in done.record and len(task.epochs) == 20


def test_the_give_up_epoch_is_twice_what_the_trial_needed(cfg):
    """At batch 32 an epoch is 1,875 steps, so judging needs 2 epochs; the trial left the plateau at epoch 5."""
    study, task = _study([0.02], left_at=5), FakeTask(stuck={(0, 0)})
    done = _retrain(study, cfg.with_overrides(name="retrain-b32", batch_size=32), task)
    assert done.record["attempts"][0]["epochs"] == 10 and done.seed == 1


def test_a_fallback_export_is_the_other_trial_reused_and_verified(ae_cfg, tiny, storage, monkeypatch, capsys):
    """Through ``export_best``: the best trial's every seed given up, the next-best trial exported under its
    own number, recording whose place it took; asked again, that export is handed back without a retrain."""
    from mnist_hpo.artifacts.export import export_best
    from mnist_hpo.cli import main
    from mnist_hpo.hpo.run import run_study

    run_study(ae_cfg, storage_url=storage, data=tiny, progress=False)
    study = optuna.load_study(study_name=ae_cfg.name, storage=storage)
    best = study.best_trial.number
    monkeypatch.setattr(plateau, "mean_image_test_mse", lambda data: 1.0)  # every trial left it; stuck: >= 0.85
    monkeypatch.setattr(plateau, "MIN_STEPS", 1)
    real_run, runs = retraining._run, []

    def run(task, trial, cfg, data, seed, progress, stuck=None):
        runs.append((trial.number, seed))
        if trial.number == best:
            raise retraining._Stuck(1, 0.9)
        return real_run(task, trial, cfg, data, seed, progress, stuck)

    monkeypatch.setattr(retraining, "_run", run)
    folder = export_best(ae_cfg.name, storage_url=storage, data=tiny, progress=False)
    meta = json.loads((folder / "export.json").read_text())
    assert folder.name == f"trial-{meta['trial']}" and meta["trial"] != best
    assert meta["retrain"]["fallback"]["from_trial"] == best and len(meta["retrain"]["attempts"]) == 4
    assert f"stayed on the mean-image plateau; exported trial {meta['trial']}" in capsys.readouterr().err
    asked = len(runs)
    assert export_best(ae_cfg.name, storage_url=storage, data=tiny, progress=False) == folder
    assert len(runs) == asked  # reused, not retrained
    assert main(["verify", str(folder)]) == 0
