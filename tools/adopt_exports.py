"""Give the studies of a storage their UUIDs, and their exports made before UUIDs their study's: no retraining.

    python tools/adopt_exports.py --journals results/journals --exports results/exports   # the record
    python tools/adopt_exports.py --storage sqlite:///storage/mnist_hpo.db                 # a storage of your own

Each study gets its user attribute ``uuid`` if it has none, and the exports in ``<exports>/<study>/``
that are all of its trials (the same name, trial number, parameters and objective values) get
``study_uuid`` and ``storage`` in their export.json and a ``study.json`` claiming the folder
(:func:`mnist_hpo.artifacts.folders.adopt_study`). Weights and everything else stay as they are.
Running it again changes nothing; a journal added later (a study still running) is taken when it
is run again. ``mnist-hpo study`` and ``mnist-hpo export`` do the same for one study as they need it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import optuna

from mnist_hpo.artifacts.folders import adopt_study
from mnist_hpo.errors import UserError
from mnist_hpo.storages import exports_dir, open_storage, require_stored


def storages(args: argparse.Namespace) -> list[str]:
    if args.journals is not None:
        journals = sorted(Path(args.journals).glob("*.log"))
        if not journals:
            raise UserError(f"--journals {args.journals}: no <study>.log files there")
        return [f"journal:{p}" for p in journals]
    require_stored(args.storage)
    return [args.storage]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--journals", metavar="DIR", help="a folder of journal files, one per study")
    where.add_argument("--storage", metavar="URL", help="a storage URL (default: the default storage)")
    parser.add_argument("--exports", metavar="DIR", help="the exports folder (default: storage/exports)")
    args = parser.parse_args(argv)
    root = Path(args.exports) if args.exports else exports_dir()
    try:
        for url in storages(args):
            storage = open_storage(url)
            for summary in optuna.get_all_study_summaries(storage):
                print(adopt_study(optuna.load_study(study_name=summary.study_name, storage=storage), root))
    except UserError as e:
        print(f"adopt_exports: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
