"""The record's cross table: every denoiser on every noise (the report's open rows), and its figure.

    python tools/noise_table.py                      # the record's exports under results/exports
    python tools/noise_table.py --export "mine=storage/exports/my-dae/trial-3" ...

Prints a Markdown table (test MSE against the clean images, 10,000 test images, noise drawn once
from the record's seed; * marks each column's best), writes it with the numbers as JSON to
``results/noise-cross.json`` and the figure to ``results/report-figures/noise-cross.png``.
A study that has no export yet is left out, and said so.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mnist_hpo.analysis.noise_cross import cross_figure, cross_table, load_denoisers, table_rows  # noqa: E402
from mnist_hpo.artifacts.folders import LATEST  # noqa: E402
from mnist_hpo.data.datasets import load_dataset  # noqa: E402
from mnist_hpo.errors import UserError  # noqa: E402

# label -> the record's study whose latest export it is (the first that exists of each list)
RECORD = {
    "ae (no noise)": ["ae"],
    "dae (Gaussian)": ["dae-hyperband", "dae"],
    "dae-sp (salt and pepper)": ["dae-sp"],
    "dae-mix (mix)": ["dae-mix"],
}


def record_exports(root: Path) -> dict[str, Path]:
    found = {}
    for label, studies in RECORD.items():
        for name in studies:
            latest = root / name / LATEST
            if latest.exists():
                found[label] = root / name / latest.read_text().strip()
                break
        else:
            print(f"{label}: no export of {' or '.join(studies)} under {root} yet; left out", file=sys.stderr)
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--export",
        action="append",
        default=[],
        metavar="LABEL=FOLDER",
        help="a model to test instead of the record's (repeatable)",
    )
    p.add_argument("--results", type=Path, default=ROOT / "results", help="the record's folder")
    args = p.parse_args(argv)
    try:
        exports = (
            dict(e.split("=", 1) for e in args.export) if args.export else record_exports(args.results / "exports")
        )
        models = load_denoisers({k: Path(v) for k, v in exports.items()})
    except (UserError, ValueError) as e:
        print(f"noise_table: {e}", file=sys.stderr)
        return 1
    test_images = load_dataset("mnist").test_images
    table = cross_table(models, test_images)
    columns, rows = table_rows(table)
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    print("\n".join(lines))
    out = {
        "exports": {
            k: str(Path(v).resolve().relative_to(ROOT)) if Path(v).resolve().is_relative_to(ROOT) else str(v)
            for k, v in exports.items()
        },
        "test_mse": table,
    }
    (args.results / "noise-cross.json").write_text(json.dumps(out, indent=2) + "\n")
    cross_figure(models, test_images, args.results / "report-figures" / "noise-cross.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
