"""Frozen against fine-tuned encoder: one classifier head trained both ways on an autoencoder export.

The report trains its classifier heads on a frozen encoder (section 4). This trains the
frozen grid's best head (nh1 271, L2 0, Adam, lr 1e-3, dropout 0.05, measured earlier)
twice with the same seed on all training images: once on the frozen encoder's codes,
once with the encoder trained too (``finetune = true``), and prints both test
accuracies side by side as one JSON object. The classifier settings are the shipped clf study's (mnist_hpo/studies/clf.toml).

Usage: python benchmarks/finetune.py storage/exports/ae/trial-12 [--epochs 20] [--subset N] [--test-subset N]
       [--device auto|cpu|cuda] [--seed S]
       python benchmarks/finetune.py --head-from results/exports/clf/trial-167 [...]

``--head-from`` takes a classifier export instead: its grid point as the head, its seed,
and the encoder it was trained on (its pinned ``encoder_export``), so the frozen run
repeats that export's retrain and the fine-tuned one differs from it only by training
the encoder too.

At full size (20 epochs x 60000 images) the fine-tuned run trains the convolutional encoder
every step and takes far longer than the frozen one; --subset 600 --epochs 1 checks it runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mnist_hpo.artifacts.export import latest_export  # noqa: E402
from mnist_hpo.config import load_study_config  # noqa: E402
from mnist_hpo.data.datasets import load_data  # noqa: E402
from mnist_hpo.errors import UserError  # noqa: E402
from mnist_hpo.tasks import check_config, make_task, task_class  # noqa: E402

HEAD = {"nh1": 271, "weight_decay": 0.0, "optimizer": "Adam", "lr": 1e-3, "dropout": 0.05}


def head_from(clf_export: Path) -> tuple[Path, dict, int]:
    """A classifier export's encoder folder, head parameters and seed."""
    path = clf_export / "export.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"--head-from {clf_export}: cannot read {path} ({e}); give a classifier export folder") from e
    options = meta.get("model", {}).get("options", {})
    if meta.get("model", {}).get("type") != "classifier" or not options.get("encoder_export"):
        raise UserError(f"--head-from {clf_export}: not a classifier export (it names no encoder_export)")
    return Path(options["encoder_export"]), meta["params"], int(meta["seed"])


def compare(
    export: Path,
    *,
    epochs: int = 20,
    subset: int | None = None,
    test_subset: int | None = None,
    device: str = "auto",
    seed: int | None = None,
    head: dict | None = None,
) -> dict:
    """Train ``head`` (default ``HEAD``) on ``export``'s encoder frozen and fine-tuned; both test accuracies."""
    head = head or HEAD
    base = load_study_config("clf")
    base = base.with_overrides(
        study_name="finetune", epochs=epochs, train_subset=subset, test_subset=test_subset, device=device, seed=seed
    )
    data = load_data(base)
    out: dict = {
        "export": str(export),
        "head": head,
        "epochs": epochs,
        "seed": base.seed,
        "train_images": len(data.subset(subset).train_images),
    }
    for mode, finetune in (("frozen", False), ("finetuned", True)):
        cfg = dataclasses.replace(
            base, model_options={**base.model_options, "encoder_export": str(export), "finetune": finetune}
        )
        check_config(cfg)
        cfg = task_class(cfg.model).resolve(cfg, latest_export=latest_export, pinned=None)
        task = make_task(cfg, data)
        start = time.perf_counter()
        result = task.fit(head, seed=cfg.seed, epochs=epochs, full=True)
        seconds = time.perf_counter() - start
        metrics = task.test(result.model)
        out[mode] = {
            "test_accuracy": metrics["test_accuracy"],
            "seconds": round(seconds, 2),
            "device": str(task.device),
        }
    out["difference"] = out["finetuned"]["test_accuracy"] - out["frozen"]["test_accuracy"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("export", nargs="?", help="an autoencoder export folder (storage/exports/<study>/trial-<N>)")
    p.add_argument("--head-from", metavar="CLF_EXPORT", help="a classifier export: its head, seed and encoder")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--subset", type=int, help="train on the first N training images only (a check)")
    p.add_argument("--test-subset", type=int, help="test on the first N test images only")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int)
    args = p.parse_args(argv)
    try:
        if args.epochs < 1:
            raise UserError(f"--epochs must be at least 1, got {args.epochs}")
        export, head, seed = (Path(args.export) if args.export else None), None, args.seed
        if args.head_from:
            encoder, head, clf_seed = head_from(Path(args.head_from))
            export, seed = export or encoder, seed if seed is not None else clf_seed
        if export is None:
            raise UserError("give an autoencoder export folder, or --head-from a classifier export")
        result = compare(
            export,
            epochs=args.epochs,
            subset=args.subset,
            test_subset=args.test_subset,
            device=args.device,
            seed=seed,
            head=head,
        )
    except UserError as e:
        print(f"mnist-hpo: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
