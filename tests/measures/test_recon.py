import numpy as np
import pytest
import torch
from optuna.trial import TrialState

from mnist_hpo.measures import recon
from mnist_hpo.hpo.run import run_study
from mnist_hpo.models import Autoencoder


def test_reconstruction_rows(tiny):
    torch.manual_seed(0)
    model = Autoencoder(latent_dim=3, nh1=20)
    images = tiny.test_images[:6]
    assert recon.reconstructs(model) and not recon.reconstructs(model.encoder)
    rows = recon.reconstruction_rows(images, [("a", model), ("b", model)])
    assert [label for label, _ in rows] == ["images", "a", "b"]
    assert all(arr.shape == (6, 28, 28) for _, arr in rows)
    np.testing.assert_allclose(rows[0][1], images.numpy() / 255.0)
    assert model.training  # put back as it was

    def corrupt(x, g):
        return x + 0.5 * torch.randn(x.shape, generator=g)

    rows = recon.reconstruction_rows(images, [("a", model)], corrupt=corrupt)
    assert [label for label, _ in rows] == ["images", "noisy input", "a"]
    assert rows[1][1].min() >= 0 and rows[1][1].max() <= 1  # shown clipped


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
    resumed = run_study(ae_cfg.with_overrides(trials=3, trial_figures=False), storage_url=storage, data=tiny,
                        progress=False)
    assert figures(resumed) == [1, 1, 0]


def test_the_records_comparison_studies_attach_no_trial_figures():
    from mnist_hpo.workflows.record import study_parts

    with_figures = {p.name for p in study_parts() if p.figures}
    assert with_figures == {"ae", "ae-table1", "dae", "clf", "gan-search"}


def test_no_trial_figures_on_the_command_line_and_for_workers(monkeypatch):
    from mnist_hpo.cli import build_parser
    from mnist_hpo.commands import search

    args = build_parser().parse_args(["worker", "ae", "--no-trial-figures"])
    cfg = search._load_cfg(args)
    assert cfg.trial_figures is False and search._load_cfg(build_parser().parse_args(["worker", "ae"])).trial_figures
    seen = []
    monkeypatch.setattr(search, "spawn_workers", lambda cfg, n, **kw: seen.append(cfg))  # as search calls it
    search.run_workers(args, cfg, 2)
    assert seen[0].trial_figures is False  # each worker gets the study as resolved here, switch included
