"""Loading an export back: its model, checked against the sha256 recorded at export time, and its metadata."""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import load_file
from torch import nn

from ..data.integrity import check_sha256
from ..errors import UserError
from ..tasks import registry
from .folders import META, read_export_meta


def exported_provider(meta: dict) -> dict | None:
    """What an export recorded of its plugin family's provider (None: a built-in, or exported before it was)."""
    provider = meta.get("provider")
    if not isinstance(provider, dict) or registry.is_builtin(str((meta.get("model") or {}).get("type"))):
        return None
    return provider


def load_export(path: str | Path) -> tuple[nn.Module, dict]:
    """Public API: the exported model as an ``nn.Module`` (eval mode, CPU) and its metadata (export.json).

    The weights' sha256 is checked against the one recorded at export time first; nothing is
    unpickled (safetensors). The metadata holds the study, trial, parameters, ``metrics``
    (validation and test), the training ``history``, the seed, the dataset's checksum and the
    study's whole config. A model takes float images in [0, 1] shaped N×1×28×28: the dataset's
    uint8 N×28×28 images divided by 255 with a channel axis added. An autoencoder returns the
    reconstructions (its ``encoder`` alone gives the codes), a classifier the class logits.

        >>> import torch
        >>> from mnist_hpo.data.datasets import load_dataset
        >>> from mnist_hpo.artifacts.export import latest_export
        >>> model, meta = load_export(latest_export("ae-quick"))
        >>> meta["study"], meta["model"]["type"]
        ('ae-quick', 'autoencoder')
        >>> images = load_dataset("mnist").test_images[:8]          # uint8, 8×28×28
        >>> x = images.unsqueeze(1).float() / 255                   # float in [0, 1], 8×1×28×28
        >>> with torch.no_grad():
        ...     out = model(x)
        >>> out.shape
        torch.Size([8, 1, 28, 28])
    """
    meta = read_export_meta(path)
    folder = Path(meta["_folder"])
    weights = folder / meta["weights"]["file"]
    check_sha256(
        weights,
        meta["weights"]["sha256"],
        where="the sha256 recorded at export time",
        hint="it was changed — export again",
        missing_hint="export the study again",
    )
    info = meta["model"]
    try:
        task = registry.resolve(str(info["type"]), recorded=exported_provider(meta))
        model = task.build(info["arch"])
    except KeyError as e:
        raise UserError(f"{folder / META} records no model {e}; export the study again") from None
    except UserError as e:
        raise UserError(f"{folder}: {e}") from None
    try:
        model.load_state_dict(load_file(weights))
    except (RuntimeError, OSError) as e:
        raise UserError(f"{weights} does not fit a {info['type']} {info['arch']} ({str(e).splitlines()[0]})") from None
    return model.eval(), meta
