"""Train several classifier heads at once on a frozen encoder's cached codes (the classifier study, stacked).

The heads of K trials are stacked along a leading "trial" axis as in
:mod:`mnist_hpo.train.stacked` (its optimizer and end-of-epoch pruning serve both);
the hidden width ``nh1`` is zero-padded to the largest. Nothing here knows about Optuna.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from ..models import EncoderClassifier
from .stacked import OnTrialEpoch, StackedOptimizer, end_epoch


@dataclass(frozen=True)
class HeadSpec:
    """One grid point of the classifier study (frozen encoder: heads train on its codes)."""

    latent_dim: int
    encoder_nh1: int
    nh1: int
    dropout: float
    optimizer: str
    lr: float
    weight_decay: float
    seed: int


class StackedHeads:
    """K heads Linear(latent, nh1)-ReLU-Dropout(p)-Linear(nh1, 10), nh1 zero-padded to the largest.

    Initial weights are those the one-at-a-time path builds under each seed. Dropout
    draws its masks from one shared stream, so with p > 0 a stacked run is a different
    (equally valid) noise realisation than one-at-a-time; with p = 0 they agree.
    """

    def __init__(self, specs: list[HeadSpec], device: torch.device | str = "cpu") -> None:
        self.specs = list(specs)
        self.k = len(specs)
        self.hidden = max(s.nh1 for s in specs)
        latent = specs[0].latent_dim
        heads = []
        for s in specs:
            torch.manual_seed(s.seed)  # as ClassifierTask.fit: the whole model is built under the seed
            heads.append(EncoderClassifier(s.latent_dim, s.encoder_nh1, s.nh1, s.dropout).head.state_dict())
        # Weights are kept transposed ([in, out] per head) so the batched matmuls read them as stored.
        w1 = torch.zeros(self.k, latent, self.hidden)
        b1 = torch.zeros(self.k, self.hidden)
        w2 = torch.zeros(self.k, self.hidden, 10)
        for i, h in enumerate(heads):
            n = h["net.0.weight"].shape[0]
            w1[i, :, :n], b1[i, :n], w2[i, :n] = h["net.0.weight"].T, h["net.0.bias"], h["net.3.weight"].T
        b2 = torch.stack([h["net.3.bias"] for h in heads])
        self.params = {
            k: t.to(device).requires_grad_(True)
            for k, t in {"net.0.weightT": w1, "net.0.bias": b1, "net.3.weightT": w2, "net.3.bias": b2}.items()
        }
        self.keep_prob = torch.tensor([1.0 - s.dropout for s in specs], device=device).view(-1, 1, 1)

    def forward(self, z: torch.Tensor, train: bool) -> torch.Tensor:
        """z: [K, B, latent] -> logits [K, B, 10]."""
        p = self.params
        h = F.relu(torch.baddbmm(p["net.0.bias"].unsqueeze(1), z, p["net.0.weightT"]))
        if train:
            # Inverted dropout with one mask tensor: kept units scaled by 1/(1-p), dropped ones 0.
            mask = (torch.rand_like(h) < self.keep_prob).to(h.dtype).mul_(1.0 / self.keep_prob)
            h = h * mask
        return torch.baddbmm(p["net.3.bias"].unsqueeze(1), h, p["net.3.weightT"])

    def keep(self, index: torch.Tensor) -> None:
        self.specs = [self.specs[i] for i in index.tolist()]
        self.k = len(self.specs)
        for key, t in self.params.items():
            self.params[key] = t.detach()[index.to(t.device)].requires_grad_(True)
        self.keep_prob = self.keep_prob[index.to(self.keep_prob.device)]

    def state_dict(self, i: int) -> dict[str, torch.Tensor]:
        """Head i in the layout of :class:`~mnist_hpo.models.classifier.Head` (padding removed)."""
        n = self.specs[i].nh1
        p = {k: t.detach()[i] for k, t in self.params.items()}
        return {
            "net.0.weight": p["net.0.weightT"][:, :n].T.clone(),
            "net.0.bias": p["net.0.bias"][:n].clone(),
            "net.3.weight": p["net.3.weightT"][:n].T.clone(),
            "net.3.bias": p["net.3.bias"].clone(),
        }


@torch.inference_mode()
def _evaluate_heads(
    stack: StackedHeads, codes: torch.Tensor, labels: torch.Tensor, chunk: int = 2048
) -> tuple[list[float], list[float]]:
    # In chunks: all K heads' hidden activations for every code at once would take gigabytes.
    ce = torch.zeros(stack.k, device=codes.device)
    correct = torch.zeros(stack.k, device=codes.device)
    for start in range(0, len(codes), chunk):
        z, y = codes[start : start + chunk], labels[start : start + chunk]
        logits = stack.forward(z.unsqueeze(0).expand(stack.k, *z.shape), train=False)  # [K, n, 10]
        ce += F.cross_entropy(logits.transpose(1, 2), y.unsqueeze(0).expand(stack.k, -1), reduction="none").sum(1)
        correct += (logits.argmax(-1) == y).sum(1)
    return (ce / len(codes)).tolist(), (correct / len(codes)).tolist()


def fit_stacked_heads(
    specs: list[HeadSpec],
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    *,
    epochs: int,
    batch_size: int,
    on_epoch: OnTrialEpoch | None = None,
) -> tuple[StackedHeads, list[dict[str, Any]]]:
    """Train the heads of ``specs`` together on cached codes; histories hold train/val CE and val accuracy."""
    codes, labels = train
    device = codes.device
    stack = StackedHeads(specs, device)
    # StackedOptimizer uses only .params and .specs, which StackedHeads has too (its annotation, in stacked.py, says
    # StackedAutoencoders: to be widened there)
    opt = StackedOptimizer(stack)  # type: ignore[arg-type]
    gens = [torch.Generator().manual_seed(s.seed) for s in specs]
    alive = list(range(len(specs)))
    histories: list[dict[str, Any]] = [{"train_loss": [], "val_loss": [], "val_accuracy": []} for _ in specs]
    n = len(codes)
    for epoch in range(epochs):
        if not alive:
            break
        orders = torch.stack([torch.randperm(n, generator=gens[i]) for i in alive]).to(device)  # [K, n]
        sums = torch.zeros(len(alive), device=device)
        for start in range(0, n, batch_size):
            idx = orders[:, start : start + batch_size]
            logits = stack.forward(codes[idx], train=True)  # [K, B, 10]
            per_head = F.cross_entropy(logits.transpose(1, 2), labels[idx], reduction="none").mean(1)
            per_head.sum().backward()
            opt.step()
            sums += per_head.detach() * idx.shape[1]
        val_ce, val_acc = _evaluate_heads(stack, *val)
        metrics = {"train_loss": (sums / n).tolist(), "val_loss": val_ce, "val_accuracy": val_acc}
        alive = end_epoch(stack, opt, alive, histories, epoch, metrics, on_epoch)
    return stack, histories
