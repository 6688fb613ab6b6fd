"""The mistakes each command can find before it imports torch or Optuna: found here, they answer at once.

:func:`mnist_hpo.cli.main` calls ``CHECKS[command](args)`` with the command's typed arguments
(:mod:`mnist_hpo.commands.args`) after parsing and before it imports
the command's module (``mnist_hpo.commands.<module>``, which loads the whole stack, about 2 s).
What needs the stack (a study file's model options, a study missing from an existing storage,
a database that is not Optuna's) is still found by the command itself, before any training.
Only light modules may be imported here: the standard library, :mod:`mnist_hpo.errors`,
:mod:`mnist_hpo.core`, :mod:`mnist_hpo.data.names` and :mod:`mnist_hpo.storages`.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from pathlib import Path

from ..core.names import check_name
from ..core.parse import parse_study_head
from ..core.schema import NEW_STUDY
from ..core.settings import flags_on
from ..core.study_files import read_study_document, study_path, study_source
from ..data.names import dataset_names, is_dataset
from ..errors import UserError, require_extra
from ..storages import check_storage_folder, check_storage_url, require_stored
from .args import CompareArgs, DashboardArgs, DataArgs, ExploreArgs, GanArgs, ListArgs, ReportArgs, RunArgs, VerifyArgs


def check_study_file(args: RunArgs | GanArgs) -> str:
    """The study file can be read and its shape is right; the study's name (``[study] name``)."""
    path = study_path(args.study)
    values, _, _ = parse_study_head(
        read_study_document(path), source=study_source(path)
    )  # model options: later, with torch
    return values["name"]


def check_run(args: RunArgs) -> None:
    """``study`` and ``worker``: the study file can be read, the storage URL has a known form, and a
    changed meaning comes with a new name (StudyConfig.with_overrides has the same rule for the Python API)."""
    given = {s.key: s.flag.name for s, _ in flags_on("study") if s.flag is not None and s.key in args.overrides}
    if "name" in given:
        check_name(args.overrides["name"], given["name"])
    name = check_study_file(args)  # the study's own name, not its file's: int.toml may name 'mlpae-int'
    check_storage_url(args.storage)
    check_storage_folder(args.storage)
    changed = [f"{flag} {args.overrides[key]}" for key, flag in given.items() if key in NEW_STUDY]
    if changed and not args.overrides.get("name"):
        raise UserError(
            f"{' '.join(changed)} changes what a trial means, so it makes another study: give it a name "
            f"with --study-name, e.g. --study-name {name}-short (the study '{name}' keeps its settings)"
        )


def check_reader(args) -> None:
    """A command that reads a stored study (any whose arguments have ``storage``): the storage must exist
    (opening it would create it)."""
    check_storage_url(args.storage)
    require_stored(args.storage)


def check_list(args: ListArgs) -> None:
    check_storage_url(args.storage)
    if args.storage is not None:  # a missing default storage is "no studies yet", said by the command
        require_stored(args.storage)


def _check_journals(journals: str | None, storage: str | None) -> None:
    if journals is not None:
        if not Path(journals).is_dir():
            raise UserError(
                f"--journals {journals}: no such folder; pass the folder that holds the <study>.log "
                "files, e.g. --journals results/journals"
            )
    else:
        check_storage_url(storage)
        require_stored(storage, record_hint="--journals results/journals")


def check_compare(args: CompareArgs) -> None:
    if not math.isfinite(args.target):
        raise UserError(f"--target {args.target}: expected a finite number, e.g. --target 0.0172")
    if args.out and Path(args.out).suffix.lower() != ".png":
        raise UserError(f"--out {args.out}: expected a .png file name")
    _check_journals(args.journals, args.storage)


def check_report(args: ReportArgs) -> None:
    for item in args.study:
        _, sep, name = item.partition("=")
        if not sep or not name:
            raise UserError(f"--study {item!r}: expected SECTION=NAME, e.g. --study ae=ae-short")
    _check_journals(args.journals, args.storage)


def check_explore(args: ExploreArgs) -> None:
    if args.tsne_iter < 250:
        raise UserError(f"--tsne-iter {args.tsne_iter}: scikit-learn's t-SNE needs at least 250 iterations")
    if not all(0 <= d <= 9 for d in args.interpolate):
        raise UserError(f"--interpolate {args.interpolate[0]} {args.interpolate[1]}: digits are 0 to 9")
    if args.export and not (Path(args.export) / "export.json").is_file():
        raise UserError(
            f"--export {args.export} is not an export (no export.json); pass a folder under storage/exports/"
        )


def check_verify(args: VerifyArgs) -> None:
    path = Path(args.path)
    folder = path.parent if path.is_file() else path
    if not (folder / "export.json").is_file():
        raise UserError(f"{folder} is not an export (no export.json); pass a folder under storage/exports/")
    if args.storage is not None:
        check_reader(args)
    if args.journals is not None and not Path(args.journals).is_dir():
        raise UserError(
            f"--journals {args.journals}: no such folder; pass the folder that holds the <study>.log "
            "files, e.g. --journals results/journals"
        )


def check_gan(args: GanArgs) -> None:
    """``gan``: the study file, and a ``--run`` name that becomes a folder under storage/gan/."""
    if args.run is not None:
        check_name(args.run, "--run", "short")
    check_study_file(args)


def check_data(args: DataArgs) -> None:
    if not is_dataset(args.dataset):  # a built-in, or one an installed plugin registers
        raise UserError(f"unknown dataset {args.dataset!r}; choose one of {', '.join(dataset_names())}")


def check_dashboard(args: DashboardArgs) -> None:
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    if not loopback and not args.allow_remote:
        raise UserError(
            f"--host {args.host} would expose the dashboard beyond this machine; "
            "add --allow-remote if that is what you want"
        )
    require_extra("optuna_dashboard", "dashboard", "the dashboard")
    check_reader(args)


CHECKS: dict[str, Callable[..., object]] = {
    "study": check_run,
    "worker": check_run,
    "gan": check_gan,
    "export": check_reader,
    "show": check_reader,
    "rerun": check_reader,
    "delete": check_reader,
    "list": check_list,
    "compare": check_compare,
    "report": check_report,
    "explore": check_explore,
    "verify": check_verify,
    "data": check_data,
    "dashboard": check_dashboard,
}
