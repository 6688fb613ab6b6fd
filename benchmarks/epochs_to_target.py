"""Epochs trained until some trial reaches a target validation MSE, for two study files, several seeds.

Epoch counts do not depend on the hardware (wall time does; both are printed). Each
run uses a throwaway SQLite file; the study stops as soon as a trial reports a
validation MSE at or below the target; the count is every epoch trained up to
that report, pruned and unfinished trials included.

Usage: python benchmarks/epochs_to_target.py studies/ae.toml studies/ae-tpe.toml \
          --target 0.0172 --seeds 1 2 3 [--subset N] [--epochs E] [--trials T]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import optuna

from mnist_hpo.config import load_study_config
from mnist_hpo.data import load_dataset
from mnist_hpo.study import run_study


def epochs_until(study: optuna.Study, target: float) -> int | None:
    """Epochs trained, in trial order, up to the first report at or below ``target``."""
    total = 0
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        for step in sorted(t.intermediate_values):
            total += 1
            if t.intermediate_values[step] <= target:
                return total
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--target", type=float, default=0.0172)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--subset", type=int)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--trials", type=int)
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_dataset("mnist")
    for path in args.files:
        counts, walls = [], []
        for seed in args.seeds:
            cfg = load_study_config(path).with_overrides(
                seed=seed, name=f"target-{seed}", train_subset=args.subset, epochs=args.epochs, trials=args.trials,
                retrain=False)

            def stop_when_reached(study: optuna.Study, trial) -> None:
                if epochs_until(study, args.target) is not None:
                    study.stop()

            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                study = run_study(cfg, storage_url=f"sqlite:///{Path(tmp) / 's.db'}", data=data, progress=False,
                                  extra_callbacks=[stop_when_reached])
                walls.append(time.perf_counter() - start)
                n = epochs_until(study, args.target)
                spent = sum(len(t.intermediate_values) for t in study.trials)
            counts.append(n)
            print(f"{path} seed {seed}: {'not reached' if n is None else n} epochs to <= {args.target} "
                  f"({len(study.trials)} trials, {spent} epochs trained, {walls[-1]:.0f} s)", flush=True)
        reached = [c for c in counts if c is not None]
        med = statistics.median(reached) if len(reached) == len(counts) else "n/a (not always reached)"
        print(f"{path}: median epochs to target {med}; median wall {statistics.median(walls):.0f} s")


if __name__ == "__main__":
    main()
