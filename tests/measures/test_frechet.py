import json
import shutil

import numpy as np
import pytest
import scipy.linalg
import torch

from mnist_hpo.errors import UserError
from mnist_hpo.measures import frechet as Q

from ..conftest import DATA


def _stats(mean, cov):
    return Q.FeatureStats(np.asarray(mean, float), np.asarray(cov, float), 1000)


def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 6))
    s = Q.FeatureStats.of(a)
    assert Q.frechet_distance(s, s) == pytest.approx(0.0, abs=1e-8)
    # Same covariance, shifted mean: the squared shift.
    shifted = _stats(s.mean + 3.0, s.cov)
    assert Q.frechet_distance(s, shifted) == pytest.approx(9.0 * 6, rel=1e-8)
    # Commuting covariances (a rotated diagonal pair): sum (sqrt(a_i) - sqrt(b_i))^2.
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    da, db = np.array([1, 2, 3, 4, 5, 6.0]), np.array([6, 1, 2, 9, 0.5, 1.0])
    d = Q.frechet_distance(_stats(np.zeros(6), q @ np.diag(da) @ q.T), _stats(np.zeros(6), q @ np.diag(db) @ q.T))
    assert d == pytest.approx(((np.sqrt(da) - np.sqrt(db)) ** 2).sum(), rel=1e-8)


def test_frechet_distance_agrees_with_scipy_sqrtm_and_survives_singular_covariances():
    rng = np.random.default_rng(1)
    a, b = Q.FeatureStats.of(rng.normal(size=(300, 20))), Q.FeatureStats.of(rng.gamma(2.0, size=(300, 20)))
    root = scipy.linalg.sqrtm(a.cov @ b.cov).real
    expected = ((a.mean - b.mean) ** 2).sum() + np.trace(a.cov + b.cov - 2 * root)
    assert Q.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    # Fewer samples than dimensions: rank-deficient covariances, still a finite, non-negative number.
    few = Q.FeatureStats.of(rng.normal(size=(5, 20)))
    assert 0 <= Q.frechet_distance(few, few) < 1e-6
    assert np.isfinite(Q.frechet_distance(few, a))


def test_coverage_total_variation():
    assert Q.coverage_tv(Q.class_histogram(torch.arange(1000) % 10)) == pytest.approx(0.0)
    assert Q.coverage_tv(Q.class_histogram(torch.full((50,), 3))) == pytest.approx(0.9)
    assert Q.coverage_tv(Q.class_histogram(torch.tensor([0, 1] * 10))) == pytest.approx(0.8)


def test_cached_classifier_is_accurate(fidnet, mnist):
    meta = json.loads(Q.fidnet_path("mnist", DATA).with_suffix(".json").read_text())
    assert meta["test_accuracy"] >= 0.99 and meta["dataset_checksum"] == mnist.checksum
    assert Q.classifier_accuracy(fidnet, mnist.test_images, mnist.test_labels) == pytest.approx(meta["test_accuracy"])


@pytest.fixture(scope="module")
def test_scorer(fidnet, mnist):
    return Q.Scorer(fidnet, mnist.test_images)


def test_score_is_near_zero_for_real_digits_and_large_for_noise(test_scorer, mnist):
    real = test_scorer.score_u8(mnist.train_images[:10000])
    g = torch.Generator().manual_seed(0)
    noise = test_scorer.score_images(torch.rand(10000, 1, 28, 28, generator=g) * 2 - 1)
    blank = test_scorer.score_images(torch.full((2000, 1, 28, 28), -1.0))
    assert real["samples"] == 10000
    # Measured: real 1.5, noise 1400, blank 680, single class 600 (README "Sample quality").
    assert real["fid"] < 3.0 and real["coverage_tv"] < 0.05
    assert noise["fid"] > 300 * real["fid"] and noise["coverage_tv"] > 0.5
    assert blank["fid"] > 100 * real["fid"] and blank["coverage_tv"] == pytest.approx(0.9)  # one class only
    # Digits of a single class: looks real per image, but no variety; the coverage says so.
    ones = mnist.train_images[mnist.train_labels == 1][:2000]
    single = test_scorer.score_u8(ones)
    assert single["coverage_tv"] > 0.85 and single["fid"] > 100 * real["fid"]


def test_scale_argument(test_scorer, mnist):
    x01 = mnist.test_images[:500].unsqueeze(1).float() / 255
    a = test_scorer.score_images(x01, scale="unit")["fid"]
    b = test_scorer.score_images(x01 * 2 - 1, scale="tanh")["fid"]
    assert a == pytest.approx(b, rel=1e-5)
    with pytest.raises(ValueError, match="scale"):
        test_scorer.features(x01, scale="bytes")


def test_tampered_or_missing_classifier_is_refused(fidnet, mnist, tmp_path):
    with pytest.raises(UserError, match="mnist-hpo data"):
        Q.load_fidnet("mnist", tmp_path)
    src = Q.fidnet_path("mnist", DATA)
    shutil.copy(src, tmp_path / src.name)
    shutil.copy(src.with_suffix(".json"), tmp_path / src.with_suffix(".json").name)
    assert Q.load_fidnet("mnist", tmp_path, dataset_checksum=mnist.checksum)[1]["test_accuracy"] >= 0.99
    with pytest.raises(UserError, match="different copy"):
        Q.load_fidnet("mnist", tmp_path, dataset_checksum="0" * 64)
    data = bytearray((tmp_path / src.name).read_bytes())
    data[-10] ^= 0xFF
    (tmp_path / src.name).write_bytes(bytes(data))
    with pytest.raises(UserError, match="checksum"):
        Q.load_fidnet("mnist", tmp_path)


def test_the_shipped_judge_is_installed_and_replaces_one_trained_here(mnist, tmp_path):
    """Trained on another CPU or thread count the same recipe gives another judge: MNIST's ships instead."""
    import json

    from safetensors.torch import save_file

    from mnist_hpo.data.integrity import sha256_file
    from mnist_hpo.models.fid_net import FidNet

    shipped = json.loads((Q.SHIPPED_DIR / "mnist-fidnet.json").read_text())
    assert shipped["dataset_checksum"] == mnist.checksum and shipped["test_accuracy"] >= 0.99
    said = []
    path = Q.prepare_fidnet(mnist, tmp_path, log=said.append)
    assert sha256_file(path) == shipped["sha256"] and "the shipped one" in said[-1]
    # One trained on this machine before the judge shipped: replaced, and said so.
    torch.manual_seed(1)
    save_file(FidNet().state_dict(), path)
    path.with_suffix(".json").write_text(json.dumps({**shipped, "sha256": sha256_file(path)}))
    said.clear()
    Q.prepare_fidnet(mnist, tmp_path, log=said.append)
    assert sha256_file(path) == shipped["sha256"] and "replacing" in said[0]
    said.clear()
    Q.prepare_fidnet(mnist, tmp_path, log=said.append)  # already there: nothing to say, nothing copied
    assert said == []
    # Another copy of the data (the tests' tiny sets, Fashion-MNIST) has no shipped judge.
    assert Q.shipped_fidnet("mnist", "0" * 64) is None and Q.shipped_fidnet("fashion", mnist.checksum) is None
