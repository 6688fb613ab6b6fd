import numpy as np
import pytest
import torch
from optuna.trial import TrialState

from mnist_hpo.analysis import recon
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
