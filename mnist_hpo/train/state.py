"""A training state as safetensors plus JSON: a model's weights, its optimizers' state, and plain extras.

What a run needs to go on training where it stopped (the GAN run's checkpoints,
:mod:`mnist_hpo.workflows.checkpoints`; population-based training's segments,
:mod:`mnist_hpo.hpo.pbt`). Tensors go into safetensors; everything else (the optimizers'
plain values, a family's extras) is JSON, with each tensor replaced by the key it is stored
under. Nothing is ever unpickled.

One state is one file: :func:`state_bytes` writes the JSON into the safetensors header's
metadata, so a single sha256 covers both, and the same state always gives the same bytes.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import nn

STATE_FORMAT = 1
_META_KEY = "mnist_hpo.state"


def encode(obj: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    """A JSON-able tree of ``obj`` with each tensor replaced by the key it is stored under in ``tensors``."""
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().cpu().contiguous()
        return {"$tensor": path}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {"$dict": {k: encode(v, f"{path}.{k}", tensors) for k, v in obj.items()}}
        # Optimizer state is keyed by integer parameter ids; JSON would turn them into strings.
        return {"$items": [[k, encode(v, f"{path}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [encode(v, f"{path}.{i}", tensors) for i, v in enumerate(obj)]
        return {"$tuple": items} if isinstance(obj, tuple) else items
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {path} in a checkpoint")


def decode(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(tree, list):
        return [decode(v, tensors) for v in tree]
    if isinstance(tree, dict):
        if "$tensor" in tree:
            return tensors[tree["$tensor"]]
        if "$dict" in tree:
            return {k: decode(v, tensors) for k, v in tree["$dict"].items()}
        if "$items" in tree:
            return {k: decode(v, tensors) for k, v in tree["$items"]}
        if "$tuple" in tree:
            return tuple(decode(v, tensors) for v in tree["$tuple"])
    return tree


@dataclass
class TrainingState:
    """``tensors`` (``model.*`` the weights, ``optimizers.*`` their state) and ``meta`` (JSON: the optimizers'
    trees, the family's ``extras``)."""

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def extras(self) -> dict[str, Any]:
        return self.meta.get("extras", {})

    def model_weights(self) -> dict[str, torch.Tensor]:
        """The model's state dict alone (what an export holds)."""
        return {k[len("model.") :]: v for k, v in self.tensors.items() if k.startswith("model.")}


def capture(
    model: nn.Module, optimizers: dict[str, torch.optim.Optimizer], extras: dict[str, Any] | None = None
) -> TrainingState:
    """The state of ``model`` and ``optimizers`` (by name), with ``extras`` (JSON values), copied to the CPU."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    trees = {name: encode(opt.state_dict(), f"optimizers.{name}", tensors) for name, opt in optimizers.items()}
    return TrainingState(tensors, {"format": STATE_FORMAT, "optimizers": trees, "extras": dict(extras or {})})


def restore(state: TrainingState, model: nn.Module, optimizers: dict[str, torch.optim.Optimizer]) -> None:
    """Load ``state`` into ``model`` and ``optimizers``, keeping each optimizer's hyperparameters as they are.

    The weights and the optimizers' running state (moments, step counts) come from ``state``;
    the learning rate, weight decay and the like stay those the optimizers were made with,
    so a state continues under new hyperparameters (population-based training's explore).
    """
    model.load_state_dict(state.model_weights())
    trees = state.meta.get("optimizers", {})
    if set(trees) != set(optimizers):
        raise ValueError(f"the state holds optimizers {sorted(trees)}, the model has {sorted(optimizers)}")
    for name, opt in optimizers.items():
        settings = [{k: v for k, v in group.items() if k != "params"} for group in opt.param_groups]
        opt.load_state_dict(decode(trees[name], state.tensors))
        for group, kept in zip(opt.param_groups, settings):
            group.update(kept)


def state_bytes(state: TrainingState) -> bytes:
    """One safetensors file holding the tensors, with the JSON in its header's metadata.

    The same state always gives the same bytes.
    """
    return save_tensors(state.tensors, metadata={_META_KEY: json.dumps(state.meta, sort_keys=True)})


def state_from_bytes(data: bytes) -> TrainingState:
    """The inverse of :func:`state_bytes`; a file that is not one is a ``ValueError``."""
    try:
        (size,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + size])
        meta = json.loads(header["__metadata__"][_META_KEY])
        tensors = load_tensors(data)
    except (struct.error, ValueError, KeyError, TypeError, SafetensorError) as e:
        raise ValueError(f"not a training state ({type(e).__name__}: {e})") from None
    if meta.get("format") != STATE_FORMAT:
        raise ValueError(f"training state format {meta.get('format')!r}, this version reads {STATE_FORMAT}")
    return TrainingState(tensors, meta)
