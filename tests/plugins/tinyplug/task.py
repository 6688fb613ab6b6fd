"""A tiny classifier as a model family: one hidden layer on the pixels, its validation accuracy maximised.

Small on purpose (a trial on 200 images takes well under a second) and as unlike the built-in
families as a plugin can be: its metric is ``val_acc``, maximised, and it declares a rule of each kind.
"""

from __future__ import annotations

import torch
from torch import nn

from mnist_hpo.data.datasets import to_float
from mnist_hpo.tasks import FitResult, OnEpoch, Rule, Task


class TinyTask(Task):
    metric = "val_acc"
    direction = "maximize"
    space_rules = {
        "hidden": Rule("int", low=1),
        "lr": Rule("float", low=0, low_open=True),
        "activation": Rule("choice", choices=("relu", "tanh")),
        "weight_decay": Rule("float", low=0, required=False),
    }

    def __init__(self, cfg, data) -> None:
        super().__init__(cfg, data)
        images = to_float(self.data.train_images).flatten(1)
        self.train_x, self.train_y = images[self.train_idx], self.data.train_labels[self.train_idx]
        self.val_x, self.val_y = images[self.val_idx], self.data.train_labels[self.val_idx]
        self.all_x, self.all_y = images, self.data.train_labels
        self.test_x, self.test_y = to_float(self.data.test_images).flatten(1), self.data.test_labels

    def arch(self, params: dict) -> dict:
        return {"hidden": int(params["hidden"]), "activation": params["activation"]}

    @classmethod
    def build(cls, arch: dict) -> nn.Module:
        act = nn.ReLU() if arch["activation"] == "relu" else nn.Tanh()
        return nn.Sequential(nn.Linear(784, arch["hidden"]), act, nn.Linear(arch["hidden"], 10))

    def fit(self, params: dict, *, seed: int, epochs: int, full: bool, on_epoch: OnEpoch | None = None) -> FitResult:
        torch.manual_seed(seed)
        model = self.build(self.arch(params))
        optimizer = torch.optim.SGD(
            model.parameters(), lr=float(params["lr"]), weight_decay=float(params.get("weight_decay", 0.0))
        )
        x, y = (self.all_x, self.all_y) if full else (self.train_x, self.train_y)
        vx, vy = (self.test_x, self.test_y) if full else (self.val_x, self.val_y)
        history: dict[str, list[float]] = {"train_loss": [], "val_acc": []}
        for epoch in range(epochs):
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            acc = self.accuracy(model, vx, vy)
            history["train_loss"].append(float(loss.detach()))
            history["val_acc"].append(acc)
            if on_epoch is not None:
                on_epoch(epoch, float(loss.detach()), acc)
        return FitResult(model, history["val_acc"][-1], history)

    @staticmethod
    @torch.inference_mode()
    def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        return float((model(x).argmax(1) == y).float().mean())

    def test(self, model: nn.Module) -> dict[str, float]:
        return {"test_acc": self.accuracy(model, self.test_x, self.test_y)}


class BrokenTask(TinyTask):
    """The same family with a bug: its model's forward raises, as a user's first draft might."""

    @classmethod
    def build(cls, arch: dict) -> nn.Module:
        return _Broken()


class _Broken(nn.Linear):
    def __init__(self) -> None:
        super().__init__(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise ValueError("shapes do not match: the plugin's forward has a bug")
