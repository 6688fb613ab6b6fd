"""The mean image as a baseline: the MSE of answering it, and whether a retrain ended on its plateau."""

import pytest

from mnist_hpo.data.datasets import load_data, split_indices, to_float
from mnist_hpo.measures import mean_image


@pytest.mark.mnist  # reads the MNIST cache (load_data)
def test_mean_image_mse_is_the_mse_of_answering_the_training_mean(ae_cfg):
    baseline = mean_image.mean_image_mse(ae_cfg)
    data = load_data(ae_cfg).subset(ae_cfg.train_subset, ae_cfg.test_subset)
    train_idx, val_idx = split_indices(len(data.train_images), ae_cfg.val_fraction, ae_cfg.seed)
    x = data.train_images.float() / 255
    assert abs(baseline - float(((x[val_idx] - x[train_idx].mean(0)) ** 2).mean())) < 1e-7
    # any other constant image does worse on these images: the mean is the best one
    assert baseline < float(((x[val_idx] - x[train_idx].mean(0) * 0.8) ** 2).mean())
    assert 0.05 < baseline < 0.09  # MNIST: about 0.067


def test_the_mean_images_test_mse_is_what_a_model_answering_it_scores(tiny):
    baseline = mean_image.mean_image_test_mse(tiny)
    mean = to_float(tiny.train_images).mean(dim=0)
    answer = mean.expand_as(to_float(tiny.test_images))
    assert baseline == pytest.approx(float(((answer - to_float(tiny.test_images)) ** 2).mean()), rel=1e-6)
    assert 0.05 < baseline < 0.09  # MNIST's mean image is about 0.067 from a digit
    enough = mean_image.MIN_STEPS
    assert mean_image.retrain_check("autoencoder", tiny, {"test_mse": baseline}, steps=enough)["on_plateau"] is True
    half = mean_image.retrain_check("autoencoder", tiny, {"test_mse": 0.5 * baseline}, steps=enough)
    assert half["on_plateau"] is False
    # too short to tell: no verdict either way
    assert mean_image.retrain_check("autoencoder", tiny, {"test_mse": baseline}, steps=enough - 1)["on_plateau"] is None
    assert mean_image.retrain_check("classifier", tiny, {"test_accuracy": 0.9}, steps=enough) == {}
    assert mean_image.optimizer_steps(48_000, 256, 50) == 9_400 and mean_image.optimizer_steps(600, 128, 1) == 5
