"""Train several autoencoders at once in one process, as one set of stacked tensors.

A small model leaves a GPU idle: launch overhead, not arithmetic, bounds one trial.
Here K trials' autoencoders are stacked along a leading "trial" axis and run as
grouped convolutions and batched matmuls, so one kernel launch serves K trials.
Trials may differ in every hyperparameter of the report's space:

* ``latent_dim`` and ``nh1`` differ in shape: each trial's linear layers are
  zero-padded to the largest. A padded unit has zero weights in and out, so its
  activation is 0, ReLU'(0) = 0 and every gradient reaching a padded weight is
  exactly 0; Adam/RMSprop then leave it at exactly 0 (the update is 0/(0+eps)).
  Padding changes nothing but the cost.
* optimizer, learning rate and weight decay are per-trial tensors; the update
  rules are torch's Adam and RMSprop (defaults, L2 added to the gradient), written
  out so they apply to the stacked parameters.

Each trial keeps its own seed: its weights are initialised exactly as
:class:`~mnist_hpo.models.Autoencoder` would be under that seed, and it draws its
own shuffling order from its own generator, so a stacked run reproduces the
one-at-a-time runs up to floating-point rounding (a test checks this on the CPU).
Nothing here knows about Optuna. The classifier study's heads stack the same way in
:mod:`mnist_hpo.train.stacked_heads`, with this module's optimizer and end of epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..data.datasets import to_float
from ..models import Autoencoder
from .loops import NonFiniteLoss

ADAM_BETAS = (0.9, 0.999)
RMSPROP_ALPHA = 0.99
EPS = 1e-8


@dataclass(frozen=True)
class TrialSpec:
    latent_dim: int
    nh1: int
    optimizer: str  # "Adam" or "RMSprop"
    lr: float
    weight_decay: float
    seed: int


# Parameter names, in Autoencoder.state_dict() order, with how each is stacked.
_CONV = ["encoder.conv.0", "encoder.conv.2", "encoder.conv.4"]
_DECONV = ["decoder.deconv.0", "decoder.deconv.2", "decoder.deconv.4"]
_LINEAR = ["encoder.linear.0", "encoder.linear.2", "decoder.linear.0", "decoder.linear.2"]


class StackedAutoencoders:
    """K autoencoders as stacked, padded parameter tensors (leaf tensors with grad)."""

    def __init__(self, specs: list[TrialSpec], device: torch.device | str = "cpu") -> None:
        self.specs = list(specs)
        self.k = len(specs)
        self.latent = max(s.latent_dim for s in specs)
        self.hidden = max(s.nh1 for s in specs)
        models = []
        for s in specs:
            torch.manual_seed(s.seed)  # the same initial weights as the one-at-a-time path
            models.append(Autoencoder(s.latent_dim, s.nh1).state_dict())
        self.params: dict[str, torch.Tensor] = {}
        for name in _CONV + _DECONV:
            for part in ("weight", "bias"):
                key = f"{name}.{part}"
                self.params[key] = torch.stack([m[key] for m in models])
        for name in _LINEAR:
            out_dim, in_dim = self._linear_shape(name)
            w = torch.zeros(self.k, out_dim, in_dim)
            b = torch.zeros(self.k, out_dim)
            for i, m in enumerate(models):
                mw, mb = m[f"{name}.weight"], m[f"{name}.bias"]
                w[i, : mw.shape[0], : mw.shape[1]] = mw
                b[i, : mb.shape[0]] = mb
            self.params[f"{name}.weight"] = w
            self.params[f"{name}.bias"] = b
        for key, t in self.params.items():
            self.params[key] = t.to(device).requires_grad_(True)

    def _linear_shape(self, name: str) -> tuple[int, int]:
        return {
            "encoder.linear.0": (self.hidden, 288),
            "encoder.linear.2": (self.latent, self.hidden),
            "decoder.linear.0": (self.hidden, self.latent),
            "decoder.linear.2": (288, self.hidden),
        }[name]

    # -- forward -------------------------------------------------------------------------

    def _conv(self, x: torch.Tensor, name: str, transpose: bool, **kw) -> torch.Tensor:
        # x: [B, K*Cin, H, W]; the K trials are the K groups of one grouped convolution.
        w, b = self.params[f"{name}.weight"], self.params[f"{name}.bias"]
        weight = w.reshape(-1, *w.shape[2:])
        if transpose:
            return F.conv_transpose2d(x, weight, b.reshape(-1), stride=2, groups=self.k, **kw)
        return F.conv2d(x, weight, b.reshape(-1), stride=2, groups=self.k, **kw)

    def _linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        # x: [K, B, in] -> [K, B, out]
        w, b = self.params[f"{name}.weight"], self.params[f"{name}.bias"]
        return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [K, B, 1, 28, 28] (trial k's batch in x[k]) -> reconstructions of the same shape."""
        k, bsz = x.shape[:2]
        h = x.transpose(0, 1).reshape(bsz, k, 28, 28)
        h = F.relu(self._conv(h, _CONV[0], False, padding=1))
        h = F.relu(self._conv(h, _CONV[1], False, padding=1))
        h = F.relu(self._conv(h, _CONV[2], False, padding=0))  # [B, K*32, 3, 3]
        h = h.reshape(bsz, k, 288).transpose(0, 1)  # [K, B, 288]
        h = F.relu(self._linear(h, "encoder.linear.0"))
        z = self._linear(h, "encoder.linear.2")
        h = F.relu(self._linear(z, "decoder.linear.0"))
        h = F.relu(self._linear(h, "decoder.linear.2"))  # [K, B, 288]
        h = h.transpose(0, 1).reshape(bsz, k * 32, 3, 3)
        h = F.relu(self._conv(h, _DECONV[0], True, padding=0))
        h = F.relu(self._conv(h, _DECONV[1], True, padding=1, output_padding=1))
        h = torch.sigmoid(self._conv(h, _DECONV[2], True, padding=1, output_padding=1))  # [B, K, 28, 28]
        return h.transpose(0, 1).unsqueeze(2)

    def keep(self, index: torch.Tensor) -> None:
        """Drop every trial not in ``index`` (e.g. pruned ones) from the stack."""
        self.specs = [self.specs[i] for i in index.tolist()]
        self.k = len(self.specs)
        for key, t in self.params.items():
            self.params[key] = t.detach()[index.to(t.device)].requires_grad_(True)

    def state_dict(self, i: int) -> dict[str, torch.Tensor]:
        """Trial i's weights in the layout of a plain :class:`Autoencoder` (padding removed)."""
        s = self.specs[i]
        out = {}
        for key, t in self.params.items():
            v = t.detach()[i]
            name = key.rsplit(".", 1)[0]
            if name in _LINEAR:
                out_dim, in_dim = {
                    "encoder.linear.0": (s.nh1, 288),
                    "encoder.linear.2": (s.latent_dim, s.nh1),
                    "decoder.linear.0": (s.nh1, s.latent_dim),
                    "decoder.linear.2": (288, s.nh1),
                }[name]
                v = v[:out_dim, :in_dim] if v.dim() == 2 else v[:out_dim]
            out[key] = v.clone()
        return out


class StackedOptimizer:
    """torch's Adam and RMSprop (default betas/alpha/eps, L2 weight decay) over stacked parameters."""

    def __init__(self, stack: StackedAutoencoders) -> None:
        self.stack = stack
        dev = next(iter(stack.params.values())).device
        self.lr = torch.tensor([s.lr for s in stack.specs], device=dev)
        self.wd = torch.tensor([s.weight_decay for s in stack.specs], device=dev)
        self.is_adam = torch.tensor([s.optimizer == "Adam" for s in stack.specs], device=dev)
        self.step_count = 0
        self.m = {k: torch.zeros_like(p) for k, p in stack.params.items()}
        self.v = {k: torch.zeros_like(p) for k, p in stack.params.items()}

    def keep(self, index: torch.Tensor) -> None:
        for name in ("lr", "wd", "is_adam"):
            setattr(self, name, getattr(self, name)[index.to(self.lr.device)])
        for state in (self.m, self.v):
            for k in state:
                state[k] = state[k][index.to(state[k].device)]

    @torch.no_grad()
    def step(self) -> None:
        self.step_count += 1
        t = self.step_count
        b1, b2 = ADAM_BETAS
        bc1, bc2_sqrt = 1 - b1**t, math.sqrt(1 - b2**t)
        for key, p in self.stack.params.items():
            shape = (-1,) + (1,) * (p.dim() - 1)
            lr, wd, adam = self.lr.view(shape), self.wd.view(shape), self.is_adam.view(shape)
            assert p.grad is not None, key  # one loss over the whole stack: every parameter has a gradient
            g = p.grad + wd * p
            m, v = self.m[key], self.v[key]
            # Adam keeps m (first moment) and v; RMSprop keeps only its square average, in v.
            m.lerp_(g, 1 - b1)
            v_adam = v * b2 + (1 - b2) * g * g
            v_rms = v * RMSPROP_ALPHA + (1 - RMSPROP_ALPHA) * g * g
            v.copy_(torch.where(adam, v_adam, v_rms))
            upd_adam = (lr / bc1) * m / (v.sqrt() / bc2_sqrt + EPS)
            upd_rms = lr * g / (v.sqrt() + EPS)
            p.sub_(torch.where(adam, upd_adam, upd_rms))
            p.grad = None


# on_epoch(index of the trial in specs, epoch, train_loss, val_loss) -> keep training this trial?
OnTrialEpoch = Callable[[int, int, float, float], bool]


@torch.inference_mode()
def _evaluate(stack: StackedAutoencoders, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    total = torch.zeros(stack.k, device=images.device)
    for start in range(0, len(images), batch_size):
        clean = to_float(images[start : start + batch_size])
        out = stack.forward(clean.unsqueeze(0).expand(stack.k, *clean.shape))
        total += ((out - clean.unsqueeze(0)) ** 2).sum(dim=(1, 2, 3, 4))
    return total / images.numel()


def fit_stacked(
    specs: list[TrialSpec],
    train_images: torch.Tensor,
    val_images: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    on_epoch: OnTrialEpoch | None = None,
) -> tuple[StackedAutoencoders, list[dict]]:
    """Train the trials of ``specs`` together; returns the stack and each original trial's history.

    ``on_epoch`` returning False drops that trial from the stack (pruned); a trial
    whose loss is not finite is dropped too, its history ending with ``"error"``.
    """
    device = train_images.device
    stack = StackedAutoencoders(specs, device)
    opt = StackedOptimizer(stack)
    gens = [torch.Generator().manual_seed(s.seed) for s in specs]
    alive = list(range(len(specs)))  # original index of each stack position
    histories: list[dict] = [{"train_loss": [], "val_loss": []} for _ in specs]
    n = len(train_images)
    for epoch in range(epochs):
        if not alive:
            break
        orders = [torch.randperm(n, generator=gens[i]).to(device) for i in alive]
        sums = torch.zeros(len(alive), device=device)
        for start in range(0, n, batch_size):
            idx = torch.stack([o[start : start + batch_size] for o in orders])  # [K, B]
            clean = to_float(train_images[idx.reshape(-1)]).reshape(len(alive), idx.shape[1], 1, 28, 28)
            per_trial = ((stack.forward(clean) - clean) ** 2).mean(dim=(1, 2, 3, 4))
            per_trial.sum().backward()
            opt.step()
            sums += per_trial.detach() * idx.shape[1]
        metrics = {"train_loss": (sums / n).tolist(), "val_loss": _evaluate(stack, val_images).tolist()}
        alive = end_epoch(stack, opt, alive, histories, epoch, metrics, on_epoch)
    return stack, histories


def end_epoch(
    stack,
    opt: StackedOptimizer,
    alive: list[int],
    histories: list[dict],
    epoch: int,
    metrics: dict[str, list[float]],
    on_epoch: OnTrialEpoch | None,
) -> list[int]:
    """Record each live trial's epoch metrics; drop the diverged and the pruned from the stack."""
    keep = []
    for pos, i in enumerate(alive):
        for key, values in metrics.items():
            histories[i][key].append(values[pos])
        train, val = metrics["train_loss"][pos], metrics["val_loss"][pos]
        if not (math.isfinite(train) and math.isfinite(val)):
            histories[i]["error"] = str(NonFiniteLoss(f"loss became {train} / {val}"))
            continue
        if on_epoch is None or on_epoch(i, epoch, train, val):
            keep.append(pos)
    if len(keep) < len(alive):
        index = torch.tensor(keep, dtype=torch.long)
        stack.keep(index)
        opt.keep(index)
    return [alive[p] for p in keep]
