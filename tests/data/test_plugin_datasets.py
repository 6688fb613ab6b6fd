"""A plugin's own data (entry points in group mnist_hpo.datasets): checked against the documented Dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnist_hpo.data import datasets as D
from mnist_hpo.data import names as N
from mnist_hpo.errors import UserError


class FakeEntryPoint:
    """What importlib.metadata gives for an installed distribution's entry point."""

    value, dist = "toydata:load", None

    def __init__(self, arrays):
        self.arrays = arrays

    def load(self):
        return lambda data_dir: self.arrays


def _arrays(n: int = 12, images=np.uint8, labels=np.int64) -> dict:
    rng = np.random.default_rng(0)
    return {
        "train_images": rng.integers(0, 256, (n, 28, 28)).astype(images),
        "train_labels": rng.integers(0, 10, n).astype(labels),
        "test_images": rng.integers(0, 256, (4, 28, 28)).astype(images),
        "test_labels": rng.integers(0, 10, 4).astype(labels),
    }


def test_a_plugin_dataset_loads_as_the_documented_tensors_with_a_content_checksum(monkeypatch, tmp_path):
    arrays = _arrays()
    monkeypatch.setattr(N, "plugin_datasets", lambda: {"toy-data": FakeEntryPoint(arrays)})
    ds = D.load_dataset("toy-data", data_dir=tmp_path)
    assert ds.name == "toy-data" and N.is_dataset("toy-data") and "toy-data" in N.dataset_names()
    assert ds.train_images.dtype == torch.uint8 and tuple(ds.train_images.shape) == (12, 28, 28)
    assert ds.test_labels.dtype == torch.int64 and tuple(ds.test_labels.shape) == (4,)
    assert ds.checksum == D.content_checksum(arrays)


def test_a_plugin_dataset_of_other_dtypes_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(N, "plugin_datasets", lambda: {"toy-data": FakeEntryPoint(_arrays(images=np.float32))})
    with pytest.raises(
        UserError,
        match=r"dataset 'toy-data' \(toydata:load.*train_images must be uint8 \[N, 28, 28\], "
        r"got float32 \[12, 28, 28\]",
    ):
        D.load_dataset("toy-data", data_dir=tmp_path)


def test_an_unknown_dataset_lists_the_built_in_ones():
    with pytest.raises(UserError, match="unknown dataset 'nope'; choose one of mnist, fashion-mnist"):
        D.load_dataset("nope")
