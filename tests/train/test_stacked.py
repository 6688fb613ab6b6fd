import optuna
import pytest
import torch
from optuna.trial import TrialState

from mnist_hpo.errors import UserError
from mnist_hpo.hpo.identity import open_study
from mnist_hpo.hpo.run import run_study
from mnist_hpo.models import Autoencoder
from mnist_hpo.storages import open_storage
from mnist_hpo.train.loops import fit_autoencoder, make_optimizer, seed_everything
from mnist_hpo.train.stacked import StackedAutoencoders, TrialSpec, fit_stacked

SPECS = [
    TrialSpec(9, 87, "Adam", 1e-3, 5e-5, 11),
    TrialSpec(3, 140, "RMSprop", 2e-3, 0.0, 12),
    TrialSpec(5, 60, "Adam", 5e-4, 1e-4, 13),
]


def test_stacked_forward_matches_separate_models():
    stack = StackedAutoencoders(SPECS)
    x = torch.rand(len(SPECS), 4, 1, 28, 28)
    with torch.no_grad():
        out = stack.forward(x)
        for i, s in enumerate(SPECS):
            torch.manual_seed(s.seed)
            model = Autoencoder(s.latent_dim, s.nh1)
            torch.testing.assert_close(out[i], model(x[i]), rtol=1e-5, atol=1e-6)


def test_stacked_training_matches_one_at_a_time(tiny):
    train, val = tiny.train_images[:384], tiny.train_images[384:512]
    stack, histories = fit_stacked(SPECS, train, val, epochs=2, batch_size=128)
    for i, s in enumerate(SPECS):
        g = seed_everything(s.seed)
        model = Autoencoder(s.latent_dim, s.nh1)
        opt = make_optimizer(s.optimizer, model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        h = fit_autoencoder(model, opt, train, val, epochs=2, batch_size=128, generator=g)
        assert histories[i]["val_loss"] == pytest.approx(h.val_loss, rel=1e-4)
        assert histories[i]["train_loss"] == pytest.approx(h.train_loss, rel=1e-4)
        weights = stack.state_dict(i)
        for key, value in model.state_dict().items():
            torch.testing.assert_close(weights[key], value, rtol=1e-3, atol=1e-4)


def test_padding_stays_zero_and_pruned_trials_leave(tiny):
    train, val = tiny.train_images[:256], tiny.train_images[256:384]
    seen = []

    def on_epoch(i, epoch, train_loss, val_loss):
        seen.append((i, epoch))
        return i != 1  # prune the second trial after its first epoch

    stack, histories = fit_stacked(SPECS, train, val, epochs=2, batch_size=128, on_epoch=on_epoch)
    assert sorted(seen) == [(0, 0), (0, 1), (1, 0), (2, 0), (2, 1)]
    assert [len(h["val_loss"]) for h in histories] == [2, 1, 2]
    assert stack.k == 2
    w = stack.params["encoder.linear.0.weight"]  # padded to nh1 = 140 rows
    assert torch.count_nonzero(w[1, 60:]) == 0  # trial 3 (nh1 = 60) is now at position 1


def test_study_with_stacked_trials(ae_cfg, tiny, storage, tmp_path):
    cfg = ae_cfg.with_overrides(batch_trials=2, trials=3)
    study = run_study(cfg, storage_url=storage, data=tiny, progress=False)
    trials = optuna.load_study(study_name=cfg.name, storage=storage).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert all(list(t.intermediate_values) == [0] and "seed" in t.user_attrs for t in trials)
    # The same parameters as the one-at-a-time random search (trial N draws from seed and N only).
    other = run_study(ae_cfg, storage_url=f"sqlite:///{tmp_path / 'one.db'}", data=tiny, progress=False)
    assert [t.params for t in study.trials] == [t.params for t in other.trials]
    assert [t.value for t in study.trials] == pytest.approx([t.value for t in other.trials], rel=1e-4)


def test_batch_trials_is_validated(ae_cfg):
    with pytest.raises(UserError, match="batch_trials must be at least 1"):
        ae_cfg.with_overrides(batch_trials=0)


def test_stacked_study_runs_callbacks_and_honours_stop_and_max_trials(ae_cfg, tiny, storage):
    cfg = ae_cfg.with_overrides(batch_trials=2, trials=6)
    seen = []

    def stop_after_first_stack(study, trial):
        seen.append((trial.number, trial.state))
        if len(seen) == 2:
            study.stop()  # as a callback of optimize() would: the stacked loop ends after this stack

    study = run_study(cfg, storage_url=storage, data=tiny, progress=False, extra_callbacks=[stop_after_first_stack])
    assert seen == [(0, TrialState.COMPLETE), (1, TrialState.COMPLETE)]
    assert len(study.trials) == 2
    # A worker with a time slot (max_trials) runs only that many, even when the stack is larger.
    study = run_study(cfg, storage_url=storage, data=tiny, progress=False, max_trials=1)
    assert [t.number for t in study.trials] == [0, 1, 2]


def test_stack_beats_with_one_thread(ae_cfg, tiny, storage, monkeypatch):
    """A stack of 4 trials adds one heartbeat thread, not one per trial (and still beats for each)."""
    import threading

    from mnist_hpo.tasks.autoencoder import AutoencoderTask

    monkeypatch.setattr("mnist_hpo.storages._heartbeat.HEARTBEAT_INTERVAL", 1)
    before = set(threading.enumerate())
    during = []
    real = AutoencoderTask.fit_stacked

    def counting(self, *args, **kwargs):
        during.append(sorted(t.name for t in set(threading.enumerate()) - before))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(AutoencoderTask, "fit_stacked", counting)
    cfg = ae_cfg.with_overrides(batch_trials=4, trials=4)
    study = run_study(cfg, storage_url=storage, data=tiny, progress=False)
    assert len(during) == 1 and len([n for n in during[0] if "heartbeat" in n.lower()]) == 1, during
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4


def test_stacked_loop_waits_for_a_trial_running_elsewhere(ae_cfg, tiny, storage, monkeypatch):
    """A trial another worker runs counts towards the target; when that worker dies, its retry runs here.

    The stacked loop returns only when no trial of the study is RUNNING or queued, as the single-trial loop does.
    """
    from mnist_hpo.storages import trial_id

    monkeypatch.setattr("mnist_hpo.storages._heartbeat.HEARTBEAT_INTERVAL", 1)
    cfg = ae_cfg.with_overrides(batch_trials=2, trials=2)
    storage_obj = open_storage(storage)
    elsewhere = open_study(cfg, storage_obj).ask()  # a worker that asked for a trial, beat once, then died
    storage_obj.record_heartbeat(trial_id(elsewhere))
    study = run_study(cfg, storage_url=storage, data=tiny, progress=False)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.RUNNING) == states.count(TrialState.WAITING) == 0
    assert states.count(TrialState.COMPLETE) == 2 and states.count(TrialState.FAIL) == 1
    retry = [t for t in study.trials if t.system_attrs.get("failed_trial") == elsewhere.number]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE
