"""Each trial's reconstruction figure, attached by the study loop: on by default, off by a switch that
changes no value, and never the reason a trial fails."""

import pytest
from optuna.trial import TrialState

from mnist_hpo.hpo.run import run_study
from mnist_hpo.measures import recon


@pytest.mark.slow
def test_a_failing_figure_does_not_fail_the_trial(ae_cfg, tiny, storage, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("no figure today")

    monkeypatch.setattr(recon, "reconstruction_png", boom)
    study = run_study(ae_cfg.with_overrides(trials=1), storage_url=storage, data=tiny, progress=False)
    trial = study.trials[0]
    assert trial.state == TrialState.COMPLETE
    assert trial.user_attrs["artifact_error"] == "RuntimeError: no figure today"


def test_each_trial_gets_its_figure_unless_the_study_says_no(ae_cfg, tiny, storage):
    def figures(study):
        return [sum(k.startswith("artifacts:") for k in t.system_attrs) for t in study.trials]

    study = run_study(ae_cfg.with_overrides(trials=2), storage_url=storage, data=tiny, progress=False)
    assert figures(study) == [1, 1]
    cfg = ae_cfg.with_overrides(trials=2, name="no-figures", trial_figures=False)
    assert figures(run_study(cfg, storage_url=storage, data=tiny, progress=False)) == [0, 0]
    # The switch changes no trial's value: a resume may flip it (the record's studies did).
    resumed = run_study(
        ae_cfg.with_overrides(trials=3, trial_figures=False), storage_url=storage, data=tiny, progress=False
    )
    assert figures(resumed) == [1, 1, 0]
