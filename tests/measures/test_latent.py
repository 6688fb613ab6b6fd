import numpy as np
import pytest
import torch

from mnist_hpo.measures import latent
from mnist_hpo.models import Autoencoder
from mnist_hpo.train.classifier import encode


@pytest.fixture(scope="module")
def blobs():
    """Three well-separated 6-D clusters, 40 points each, labelled 0, 1, 2."""
    rng = np.random.default_rng(0)
    centres = np.eye(3, 6) * 20
    points = np.concatenate([c + rng.normal(size=(40, 6)) for c in centres]).astype(np.float32)
    return points, np.repeat(np.arange(3), 40)


def test_encode_and_decode_shapes(tiny):
    torch.manual_seed(0)
    model = Autoencoder(latent_dim=4, nh1=32)
    codes = encode(model.encoder, tiny.test_images[:50], batch_size=16).numpy()
    assert codes.shape == (50, 4) and codes.dtype == np.float32
    # Batching does not change the codes.
    np.testing.assert_allclose(codes, encode(model.encoder, tiny.test_images[:50]).numpy(), rtol=1e-5, atol=1e-6)
    images = latent.decode(model.decoder, codes[:7])
    assert images.shape == (7, 28, 28) and images.min() >= 0 and images.max() <= 1


@pytest.mark.parametrize("method,dims", [("pca", 2), ("pca", 3), ("tsne", 2), ("tsne", 3)])
def test_embed_gives_requested_dimensions(blobs, method, dims):
    points, _ = blobs
    out = latent.embed(points, method, dims, max_iter=250)
    assert out.shape == (len(points), dims) and np.isfinite(out).all()


def test_embed_rejects_unknown_method(blobs):
    with pytest.raises(ValueError, match="unknown method"):
        latent.embed(blobs[0], "umap", 2)


def test_cluster_measures_tell_separated_from_random(blobs):
    points, labels = blobs
    assert latent.knn_accuracy(points, labels) == 1.0
    assert latent.silhouette(points, labels) > 0.8
    shuffled = np.random.default_rng(1).permutation(labels)
    assert latent.knn_accuracy(points, shuffled) < 0.6
    assert abs(latent.silhouette(points, shuffled)) < 0.1
    # The 2-D PCA of separated clusters keeps them separated.
    assert latent.knn_accuracy(latent.embed(points, "pca", 2), labels) == 1.0


def test_pca_explained_variance(blobs):
    ratios = latent.pca_explained(blobs[0], 3)
    assert len(ratios) == 3 and ratios == sorted(ratios, reverse=True) and 0.9 < sum(ratios) <= 1.0


def test_first_codes_is_table5():
    codes = np.arange(27, dtype=np.float32).reshape(3, 9)
    table = latent.first_codes(codes, np.array([7, 2, 1]), 5)
    assert table["columns"] == [f"Enc. Variable {i}" for i in range(1, 10)] + ["label"]
    assert len(table["rows"]) == 3  # fewer codes than asked for
    assert table["rows"][1] == [*map(float, range(9, 18)), 2]


def test_noise_codes_statistics_and_seed():
    code = np.zeros(9, dtype=np.float32)
    noisy = latent.noise_codes(code, n=4000, mean=5.0, std=10.0, seed=3)
    assert noisy.shape == (4000, 9)
    assert noisy.mean() == pytest.approx(5.0, abs=0.2) and noisy.std() == pytest.approx(10.0, rel=0.02)
    np.testing.assert_array_equal(latent.noise_codes(code, n=16, seed=1), latent.noise_codes(code, n=16, seed=1))
    assert not np.array_equal(latent.noise_codes(code, n=16, seed=1), latent.noise_codes(code, n=16, seed=2))
    # The noise is added to the given code.
    assert latent.noise_codes(np.full(9, 100.0), n=500, seed=0).mean() == pytest.approx(105, abs=1)


def test_interpolation_ends_at_both_codes():
    a, b = np.zeros(5, dtype=np.float32), np.arange(5, dtype=np.float32)
    line = latent.interpolate_codes(a, b, 6)
    assert line.shape == (6, 5)
    np.testing.assert_array_equal(line[0], a)
    np.testing.assert_allclose(line[-1], b)
    np.testing.assert_allclose(line[3], 0.6 * b)
