"""A trial trained alone and a stack of trials share one bookkeeping (mnist_hpo/hpo/trials.py): the same seed,
conditions and history attributes, the same retry of a queued trial, the same end for a trial whose training broke."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from mnist_hpo.errors import UserError
from mnist_hpo.hpo.identity import open_study
from mnist_hpo.hpo.run import run_study
from mnist_hpo.hpo.trials import trial_seed
from mnist_hpo.storages import open_storage

# Alone, and a stack of one (batch_trials 2, one trial wanted): they differ only in how they train.
WAYS = {"alone": {"batch_trials": 1}, "stacked": {"batch_trials": 2}}


def _study(ae_cfg, tmp_path, way: str, **overrides):
    cfg = ae_cfg.with_overrides(
        study_name=f"ae-{way}", trials=1, epochs=2, trial_figures=False, **WAYS[way], **overrides
    )
    return cfg, f"sqlite:///{tmp_path / f'{way}.db'}"


def test_a_trial_alone_and_in_a_stack_of_one_store_the_same_bookkeeping(ae_cfg, tiny, tmp_path):
    trials = {}
    for way in WAYS:
        cfg, url = _study(ae_cfg, tmp_path, way)
        # A queued retry: its seed is its original's (inherited with the user attributes), not derived again.
        open_study(cfg, open_storage(url), dataset_checksum=tiny.checksum).enqueue_trial({}, user_attrs={"seed": 1234})
        (trials[way],) = run_study(cfg, storage_url=url, data=tiny, progress=False).get_trials()
    alone, stacked = trials["alone"], trials["stacked"]
    assert alone.state == stacked.state == TrialState.COMPLETE
    assert alone.params == stacked.params
    assert alone.user_attrs["seed"] == stacked.user_attrs["seed"] == 1234
    assert (alone.user_attrs["stacked"], stacked.user_attrs["stacked"]) == (0, 1)
    # All else alike: the conditions, the history (the epochs' timings are measured alone only: the arithmetic).
    apart = ("stacked", "train_loss", "seconds")
    assert {k: v for k, v in alone.user_attrs.items() if k not in apart} == {
        k: v for k, v in stacked.user_attrs.items() if k not in apart
    }
    assert len(alone.user_attrs["train_loss"]) == len(stacked.user_attrs["train_loss"]) == 2
    assert alone.user_attrs["train_loss"] == pytest.approx(stacked.user_attrs["train_loss"], rel=1e-4)
    assert list(alone.intermediate_values) == list(stacked.intermediate_values) == [0, 1]


@pytest.mark.parametrize("way", list(WAYS))
def test_a_trial_whose_training_broke_fails_alike_alone_and_stacked(ae_cfg, tiny, tmp_path, monkeypatch, way):
    from mnist_hpo.tasks.autoencoder import AutoencoderTask

    def broken(self, *args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(AutoencoderTask, "fit", broken)
    monkeypatch.setattr(AutoencoderTask, "fit_stacked", broken)
    cfg, url = _study(ae_cfg, tmp_path, way)
    with pytest.raises(UserError, match=r"3 trials in a row failed.*last error: RuntimeError: boom"):
        run_study(cfg, storage_url=url, data=tiny, progress=False)
    trials = optuna.load_study(study_name=cfg.name, storage=url).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL] * 3
    for t in trials:
        assert t.user_attrs["error"] == "RuntimeError: boom"
        assert t.user_attrs["seed"] == trial_seed(cfg.seed, t.number)
        assert t.user_attrs["train_loss"] == [] and t.user_attrs["stacked"] == (0 if way == "alone" else 1)
