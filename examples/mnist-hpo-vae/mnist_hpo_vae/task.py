"""The VAE as an mnist-hpo model family: the task protocol (``mnist_hpo/tasks/base.py``) implemented.

What tuning needs, and all it needs: the parameters it accepts, how to build, train and test the
model, and the metric's name and direction. With :meth:`VaeTask.start_training` and
:meth:`VaeTask.train_epochs` it can also be trained by population-based training (a study file's
``[pbt]``, ``studies/vae-pbt.toml``): the task protocol's default ``save_state``/``restore_state``
keep its weights and its optimizer's state between segments.

mnist-hpo hands the task the study's dataset (``self.data``: uint8 images [N, 28, 28] in 0..255,
int64 labels; see docs/plugins.md) and its train/validation split (``self.train_idx``,
``self.val_idx``); everything else is here. The objective is the validation set's negative
ELBO per image (nats, lower is better), evaluated with a fixed seed so that it is a function
of the weights alone and ``mnist-hpo verify`` recomputes the same number.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mnist_hpo.data.datasets import to_float
from mnist_hpo.tasks import FitResult, NonFiniteLoss, OnEpoch, Rule, Task, Training

from .model import Vae

EVAL_SEED = 0  # the codes drawn to evaluate a model: the same for every evaluation
EVAL_BATCH = 1000


class VaeTask(Task):
    model_type = "vae"
    direction = "minimize"
    metric = "val_loss"  # -ELBO per image, nats
    # What a study may search (any other [space] name is refused); beta has a default, so it is optional.
    space_rules = {
        "latent_dim": Rule("int", low=1),
        "hidden": Rule("int", low=1),
        "lr": Rule("float", low=0, low_open=True),
        "beta": Rule("float", low=0, required=False),
    }
    # What population-based training may change between segments: the rest shapes the model, and beta
    # weighs the metric itself (members are ranked on it, so each must be scored the same way).
    pbt_mutable = ("lr",)

    def __init__(self, cfg, data) -> None:
        super().__init__(cfg, data)  # device, the study's subset, the seeded train/validation split
        # float32 [N, 1, 28, 28] in [0, 1], resident on the training device once.
        self.train_all = to_float(self.data.train_images).to(self.device)
        self.train_images = self.train_all[self.train_idx.to(self.device)]
        self.val_images = self.train_all[self.val_idx.to(self.device)]
        self.test_images = to_float(self.data.test_images).to(self.device)

    def arch(self, params: dict) -> dict:
        return {"latent_dim": int(params["latent_dim"]), "hidden": int(params["hidden"])}

    @classmethod
    def build(cls, arch: dict) -> nn.Module:
        return Vae(**arch)

    def fit(self, params: dict, *, seed: int, epochs: int, full: bool, on_epoch: OnEpoch | None = None) -> FitResult:
        return self.train_epochs(
            self.start_training(params, seed=seed), params, epochs=epochs, full=full, on_epoch=on_epoch
        )

    def start_training(self, params: dict, *, seed: int) -> Training:
        """A fresh model and its optimizer, seeded by ``seed`` (population-based training's first hook)."""
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)  # batch order and the training codes
        model = self.build(self.arch(params)).to(self.device)
        return Training(model, {"adam": torch.optim.Adam(model.parameters(), lr=float(params["lr"]))}, generator)

    def train_epochs(
        self, training: Training, params: dict, *, epochs: int, on_epoch: OnEpoch | None = None, full: bool = False
    ) -> FitResult:
        """``epochs`` more epochs of ``training`` (its second hook; ``full``: on all images, as ``fit``'s retrain)."""
        model, optimizer, generator = training.model, training.optimizers["adam"], training.generator
        beta = float(params.get("beta", 1.0))
        train = self.train_all if full else self.train_images
        val = self.test_images if full else self.val_images
        history: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
        for epoch in range(epochs):
            model.train()
            total = 0.0
            for idx in torch.randperm(len(train), generator=generator).split(self.cfg.batch_size):
                loss = model.negative_elbo(train[idx.to(self.device)], generator, beta)
                optimizer.zero_grad(set_to_none=True)
                (loss / len(idx)).backward()
                optimizer.step()
                total += float(loss.detach())
            train_loss, val_loss = total / len(train), self.negative_elbo(model, val, beta)
            history["train_loss"].append(train_loss)
            history["val_loss"].append(val_loss)
            if not math.isfinite(train_loss) or not math.isfinite(val_loss):  # the trial ends PRUNED, with this reason
                raise NonFiniteLoss(f"-ELBO became {train_loss if not math.isfinite(train_loss) else val_loss}")
            if on_epoch is not None:
                on_epoch(epoch, train_loss, val_loss)  # may raise to prune the trial
        return FitResult(model, history["val_loss"][-1], history)

    @torch.inference_mode()
    def negative_elbo(self, model: Vae, images: torch.Tensor, beta: float = 1.0) -> float:
        """-ELBO per image on ``images``, one code per image drawn with :data:`EVAL_SEED`."""
        was_training = model.training
        model.eval()
        generator = torch.Generator().manual_seed(EVAL_SEED)
        total = sum(float(model.negative_elbo(batch, generator, beta)) for batch in images.split(EVAL_BATCH))
        model.train(was_training)
        return total / len(images)

    @torch.inference_mode()
    def test(self, model: nn.Module) -> dict[str, float]:
        """The test set's -ELBO per image (beta = 1) and the MSE of the mean reconstruction."""
        model.eval()
        squared = sum(float(((model(batch) - batch) ** 2).sum()) for batch in self.test_images.split(EVAL_BATCH))
        return {
            "test_loss": self.negative_elbo(model, self.test_images),
            "test_mse": squared / self.test_images.numel(),
        }
