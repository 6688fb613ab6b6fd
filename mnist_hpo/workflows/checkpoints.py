"""Checkpoints of the GAN run: safetensors shards plus JSON, never a pickle.

A checkpoint ``checkpoints/epoch-NNNN/`` holds ``state-KK.safetensors`` (both networks, both
optimizers' tensors, the RNG states, in shards of at most :data:`SHARD_BYTES` so that a
record under git holds no large file) and ``state.json`` (epoch, settings, history, the
optimizers' plain values, each shard's sha256); ``LATEST`` names the newest. It is written
to a temporary folder and renamed, so a run killed mid-write leaves the previous one intact.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..data.integrity import check_sha256, sha256_file, write_text_atomically
from ..errors import UserError, writing
from ..models.gan import GAN
from ..train.gan import GanHistory
from ..train.state import decode, encode

CHECKPOINT_FORMAT = 2  # 1: one state.safetensors (still read); 2: shards
SHARD_BYTES = 6 << 20


def _shards(tensors: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """Tensors grouped, in order, into dicts of at most SHARD_BYTES each (a larger tensor alone)."""
    groups: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, t in tensors.items():
        nbytes = t.numel() * t.element_size()
        if groups[-1] and size + nbytes > SHARD_BYTES:
            groups.append({})
            size = 0
        groups[-1][key] = t
        size += nbytes
    return groups


def save_checkpoint(
    folder: Path,
    *,
    epoch: int,
    model: GAN,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    rng: torch.Generator,
    history: GanHistory,
    settings: dict[str, Any],
) -> Path:
    """Write ``folder/checkpoints/epoch-NNNN/`` (epoch = epochs completed), point ``LATEST`` at it, drop older ones."""
    root = folder / "checkpoints"
    final = root / f"epoch-{epoch:04d}"
    tmp = root / f"epoch-{epoch:04d}.tmp"
    try:
        # A full disk is one line naming the checkpoint; the previous checkpoint stays the one LATEST names.
        with writing(final, "a GAN checkpoint"):
            return _save_checkpoint(
                root,
                final,
                tmp,
                epoch=epoch,
                model=model,
                opt_g=opt_g,
                opt_d=opt_d,
                rng=rng,
                history=history,
                settings=settings,
            )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _save_checkpoint(
    root: Path,
    final: Path,
    tmp: Path,
    *,
    epoch: int,
    model: GAN,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    rng: torch.Generator,
    history: GanHistory,
    settings: dict[str, Any],
) -> Path:
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors["rng.shuffle"] = rng.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    optimizers = {
        "opt_g": encode(opt_g.state_dict(), "opt_g", tensors),
        "opt_d": encode(opt_d.state_dict(), "opt_d", tensors),
    }
    shards = []
    for i, part in enumerate(_shards(tensors)):
        name = f"state-{i:02d}.safetensors"
        save_file(part, tmp / name)
        shards.append({"file": name, "sha256": sha256_file(tmp / name)})
    meta = {
        "format": CHECKPOINT_FORMAT,
        "epoch": epoch,
        "settings": settings,
        "history": history.as_dict(),
        "optimizers": optimizers,
        "shards": shards,
    }
    (tmp / "state.json").write_text(json.dumps(meta) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    write_text_atomically(root / "LATEST", final.name + "\n")
    for old in root.glob("epoch-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(
    folder: Path,
    *,
    model: GAN,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    rng: torch.Generator,
    settings: dict[str, Any],
) -> tuple[int, GanHistory] | None:
    """Restore the newest checkpoint into the given objects; ``None`` when the run has none yet."""
    root = folder / "checkpoints"
    if not (root / "LATEST").exists():
        return None
    ckpt = root / (root / "LATEST").read_text().strip()
    hint = f"delete {folder} (or pass --fresh) to start over"
    try:
        meta = json.loads((ckpt / "state.json").read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"checkpoint {ckpt} is unreadable ({e}); {hint}") from None
    if meta.get("format") not in (1, CHECKPOINT_FORMAT):
        raise UserError(
            f"checkpoint {ckpt} has format {meta.get('format')!r}, this version reads 1 and {CHECKPOINT_FORMAT}; {hint}"
        )
    if meta["settings"] != settings:
        changed = sorted(k for k in set(settings) | set(meta["settings"]) if settings.get(k) != meta["settings"].get(k))
        raise UserError(
            f"run {folder} was started with different {', '.join(changed)}; use another --run name, or {hint}"
        )
    shards = meta.get("shards") or [{"file": "state.safetensors", "sha256": meta.get("sha256")}]
    tensors = {}
    for shard in shards:
        weights = ckpt / shard["file"]
        check_sha256(weights, shard["sha256"], where="its sha256 in state.json", hint=hint)
        tensors.update(load_file(weights))
    model.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
    opt_g.load_state_dict(decode(meta["optimizers"]["opt_g"], tensors))
    opt_d.load_state_dict(decode(meta["optimizers"]["opt_d"], tensors))
    rng.set_state(tensors["rng.shuffle"])
    torch.set_rng_state(tensors["rng.torch"])
    return int(meta["epoch"]), GanHistory.from_dict(meta["history"])
