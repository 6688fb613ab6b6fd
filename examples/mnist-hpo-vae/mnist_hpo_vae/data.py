"""A dataset of the plugin's own, through mnist-hpo's data hook: binarized MNIST (``dataset = "mnist-binarized"``).

The classic benchmark of variational autoencoders: MNIST with each pixel set to 0 or 255
(threshold 128, a fixed binarization). mnist-hpo calls :func:`binarized_mnist` with its data
folder and checks what it returns (uint8 images [N, 28, 28], int64 labels [N]).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnist_hpo.data.datasets import load_dataset


def binarized_mnist(data_dir: Path) -> dict[str, np.ndarray]:
    mnist = load_dataset("mnist", data_dir=data_dir)
    binary = {
        key: np.where(getattr(mnist, key).numpy() >= 128, 255, 0).astype(np.uint8)
        for key in ("train_images", "test_images")
    }
    return {**binary, "train_labels": mnist.train_labels.numpy(), "test_labels": mnist.test_labels.numpy()}
