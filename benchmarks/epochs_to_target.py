"""Epochs trained until some trial reaches a target validation MSE, for study files and several seeds.

Epoch counts do not depend on the hardware (wall time does; both are printed). Each
run uses a throwaway SQLite file; the study stops as soon as a finished trial has
reported a validation MSE at or below the target, or once ``--budget`` epochs have been
trained (the count is then censored: "not reached within N"). The count is every epoch
trained up to the first report at or below the target, pruned trials included.

Each result is also appended as one JSON line to ``--out`` (default
storage/epochs_to_target.jsonl), so a long run keeps what it measured if it is stopped.

Usage: python benchmarks/epochs_to_target.py mnist_hpo/studies/ae.toml mnist_hpo/studies/ae-tpe.toml \
          --target 0.0172 --seeds 1 2 3 [--budget E] [--threads T] [--batch-trials K]
          [--subset N] [--epochs E] [--trials T]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import optuna
import torch

from mnist_hpo.config import load_study_config
from mnist_hpo.core.hardware import hardware
from mnist_hpo.data.datasets import load_dataset
from mnist_hpo.hpo.run import run_study


def epochs_until(study: optuna.Study, target: float) -> int | None:
    """Epochs trained, in trial order, up to the first report at or below ``target``."""
    total = 0
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        for step in sorted(t.intermediate_values):
            total += 1
            if t.intermediate_values[step] <= target:
                return total
    return None


def where_reached(study: optuna.Study, target: float) -> tuple[int, int] | None:
    """(trial number, 1-based epoch) of the first report at or below ``target``, in trial order."""
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        for step in sorted(t.intermediate_values):
            if t.intermediate_values[step] <= target:
                return t.number, step + 1
    return None


def epochs_spent(study: optuna.Study) -> int:
    return sum(len(t.intermediate_values) for t in study.get_trials(deepcopy=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--target", type=float, default=0.0172)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--budget", type=int, help="stop a run after this many epochs (censored count)")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    ap.add_argument("--out", type=Path, default=Path("storage/epochs_to_target.jsonl"))
    ap.add_argument("--subset", type=int)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--trials", type=int)
    ap.add_argument(
        "--batch-trials",
        type=int,
        help="train this many trials stacked (same trials and counts for the random sampler; faster)",
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data = load_dataset("mnist")
    for path in args.files:
        counts, walls = [], []
        for seed in args.seeds:
            cfg = load_study_config(path).with_overrides(
                seed=seed,
                name=f"target-{seed}",
                train_subset=args.subset,
                epochs=args.epochs,
                trials=args.trials,
                retrain=False,
                batch_trials=args.batch_trials,
            )

            def stop_when_done(study: optuna.Study, trial) -> None:
                if epochs_until(study, args.target) is not None or (
                    args.budget is not None and epochs_spent(study) >= args.budget
                ):
                    study.stop()

            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                study = run_study(
                    cfg,
                    storage_url=f"sqlite:///{Path(tmp) / 's.db'}",
                    data=data,
                    progress=False,
                    extra_callbacks=[stop_when_done],
                )
                walls.append(time.perf_counter() - start)
                n = epochs_until(study, args.target)
                spent = epochs_spent(study)
                where = where_reached(study, args.target)
                best = min((v for t in study.trials for v in t.intermediate_values.values()), default=None)
                states = [t.state.name for t in study.trials]
            counts.append(n)
            record = {
                "file": path,
                "seed": seed,
                "target": args.target,
                "epochs_to_target": n,
                "epochs_trained": spent,
                "reached_at": where,
                "trials": len(states),
                "pruned": states.count("PRUNED"),
                "best_val": best,
                "budget": args.budget,
                "wall_s": round(walls[-1], 1),
                "machine": hardware("cpu"),
            }
            with args.out.open("a") as f:
                f.write(json.dumps(record) + "\n")
            print(
                f"{path} seed {seed}: {'not reached' if n is None else n} epochs to <= {args.target} "
                f"({len(states)} trials, {states.count('PRUNED')} pruned, {spent} epochs trained, "
                f"best {best:.4f}, {walls[-1]:.0f} s)",
                flush=True,
            )
        reached = [c for c in counts if c is not None]
        med = statistics.median(reached) if len(reached) == len(counts) else "n/a (not always reached)"
        print(f"{path}: median epochs to target {med}; median wall {statistics.median(walls):.0f} s")


if __name__ == "__main__":
    main()
