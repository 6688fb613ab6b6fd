"""Each ``mnist-hpo`` command's arguments: one small function per command adds them to its parser
(:data:`PARSERS`); a study setting's flags come from its row in :mod:`mnist_hpo.core.settings`.

Like :mod:`mnist_hpo.cli`, this imports no torch, Optuna, NumPy or SQLAlchemy: ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ..core.settings import flags_on

STORAGE_HELP = (
    "where studies are stored: sqlite:///PATH.db, postgresql+psycopg://USER@HOST/DB or journal:PATH.log "
    "(default: $MNIST_HPO_STORAGE, else sqlite:///storage/mnist_hpo.db)"
)
QUIET_HELP = "no progress bars"
# The record's parts in order (mnist_hpo.workflows.record.PARTS, which a test compares with this).
REPRODUCE_PARTS = (
    "ae,ae-table1,dae,clf,gan,ae-tpe,gan-search,ae-hyperband,ae-gp,ae-pareto,"
    "dae-hyperband,dae-sp,dae-mix,gan-dcgan,ae-pbt,gan-pbt,report"
)


# The body of each command, imported by main() only when that command runs: those modules import
# torch, Optuna and NumPy at module level (about 2 s here), which --help and a usage error never need.
def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


# What a setting flag's kind (mnist_hpo.core.settings.Flag) reads its value as.
FLAG_TYPES: dict[str, Callable[[str], object]] = {"count": _positive, "int": int, "text": str}


def _add_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", metavar="URL", help=STORAGE_HELP)


def _add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help=QUIET_HELP)


def _add_setting_flags(p: argparse.ArgumentParser, command: str) -> None:
    """The flags of ``command`` that override a study setting, made from the table (mnist_hpo.core.settings)."""
    for setting, text in flags_on(command):
        flag = setting.flag
        assert flag is not None  # flags_on lists the settings that have one
        if flag.kind == "off":  # given, it sets the setting to False; not given, the study file's value stands
            p.add_argument(flag.name, dest=setting.key, action="store_const", const=False, default=None, help=text)
        else:
            p.add_argument(flag.name, dest=setting.key, type=FLAG_TYPES[flag.kind], metavar=flag.metavar, help=text)


def _add_run_options(p: argparse.ArgumentParser, command: str) -> None:
    p.add_argument(
        "study", help="a study that ships with mnist-hpo, by name (e.g. ae), or the path of a study file of your own"
    )
    _add_setting_flags(p, command)
    _add_storage(p)
    _add_quiet(p)
    p.add_argument("--warm-start", metavar="STUDY", help="first run the best trials of STUDY (same storage), once")
    p.add_argument(
        "--warm-start-trials",
        type=_positive,
        default=5,
        metavar="K",
        help="how many of its best complete trials (default 5)",
    )
    p.add_argument(
        "--storage-patience",
        type=_positive,
        metavar="SECONDS",
        help="ride out a storage outage this long (default 120), then exit 75; run the command again",
    )


def _add_trust_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trust-plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help='a stored study or export whose model type is an import path "MODULE:Class" that no '
        "installed distribution registers: import MODULE (runs its code; see docs/plugins.md)",
    )


def _add_origin(p: argparse.ArgumentParser, storage_help: str, journals_help: str, journals_metavar=None) -> None:
    """``--storage`` or ``--journals``, not both: where the studies are read from."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--storage", metavar="URL", help=storage_help)
    where.add_argument("--journals", metavar=journals_metavar, help=journals_help)


def _study_parser(p: argparse.ArgumentParser) -> None:
    _add_run_options(p, "study")
    p.add_argument("--workers", type=_positive, default=1, help="run N worker processes on this machine")
    p.add_argument("--no-retrain", action="store_true", help="skip the retrain and export after the search")


def _worker_parser(p: argparse.ArgumentParser) -> None:
    _add_run_options(p, "worker")
    p.add_argument("--max-trials", type=_positive, help="run at most N trials in this worker, then exit")


def _export_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="study name")
    p.add_argument("--trial", type=int, metavar="N", help="export trial N instead of the best (it must be COMPLETE)")
    p.add_argument(
        "--redo",
        action="store_true",
        help="retrain and export again even if the trial is already exported (by default an existing "
        "export is checked against its sha256 and kept)",
    )
    _add_storage(p)
    _add_quiet(p)
    _add_trust_option(p)


def _show_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="study name")
    _add_storage(p)
    p.add_argument("-k", type=_positive, default=5, help="how many trials to list (default 5)")
    _add_trust_option(p)


def _compare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("studies", nargs="+", metavar="STUDY", help="study names")
    _add_origin(p, STORAGE_HELP, "a folder of journal files, one per study (DIR/<study>.log), e.g. results/journals")
    p.add_argument("--out", help="the PNG to write (default: storage/compare.png)")
    p.add_argument(
        "--target",
        type=float,
        default=0.0172,
        help="the value to reach (default 0.0172: the report's best validation MSE)",
    )
    _add_trust_option(p)


def _rerun_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="study name")
    p.add_argument("trial", type=int, help="trial number")
    _add_storage(p)
    _add_trust_option(p)


def _verify_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="an export folder (storage/exports/<study>/trial-<N>)")
    _add_origin(
        p,
        "the storage the export came from: check that its study (by UUID) and trial are there",
        "the same for a folder of journal files, one per study (DIR/<study>.log), e.g. results/journals",
        "DIR",
    )
    p.add_argument(
        "--rescore",
        action="store_true",
        help="a GAN export scored by another quality classifier: score it again with this machine's and "
        "rewrite its export.json (the previous values kept)",
    )
    _add_trust_option(p)


def _delete_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="study name")
    _add_storage(p)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def _compact_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="journal files, e.g. results/journals/*.log")


def _data_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="mnist", help="mnist or fashion-mnist (default: mnist)")
    p.add_argument("--idx-dir", help="read the dataset's IDX files from this folder instead")


def _explore_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--export", help="an export folder (default: the latest export of --study)")
    p.add_argument("--study", default="ae", help="whose latest export to use (default: ae)")
    p.add_argument("--points", type=_positive, default=10_000, help="test images to encode (default: all 10000)")
    p.add_argument("--tsne-points", type=_positive, default=2_500, help="of those, how many t-SNE maps (default 2500)")
    p.add_argument("--tsne-iter", type=_positive, default=1000, help="t-SNE iterations (at least 250; default 1000)")
    p.add_argument("--noise-mean", type=float, default=5.0, help="mean of the noise added to a code (default 5)")
    p.add_argument("--noise-std", type=float, default=10.0, help="its standard deviation (default 10)")
    p.add_argument("--sample", type=int, default=0, help="index of the test image whose code gets the noise")
    p.add_argument(
        "--interpolate",
        type=int,
        nargs=2,
        default=(2, 7),
        metavar=("FROM", "TO"),
        help="interpolate from the first test image of digit FROM to the first of TO (default 2 7)",
    )
    p.add_argument("--threads", type=_positive, default=1, help="scikit-learn threads (default 1, see README)")
    p.add_argument("--seed", type=int, default=0, help="seed of the t-SNE map and the noise (default 0)")
    p.add_argument("--out", help="output folder (default: <export>/explore)")
    _add_trust_option(p)


def _report_parser(p: argparse.ArgumentParser) -> None:
    _add_storage(p)
    p.add_argument("--out", help="the HTML file to write (default: storage/report.html; the .md beside it)")
    p.add_argument(
        "--journals", help="a folder of journal files, one per study (e.g. results/journals), instead of --storage"
    )
    p.add_argument(
        "--study",
        action="append",
        default=[],
        metavar="SECTION=NAME",
        help="use study NAME for a section (ae, dae, clf, gan), e.g. --study ae=ae-short",
    )
    _add_trust_option(p)


def _gan_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "study",
        nargs="?",
        default="gan",
        help="a study with one value per parameter: a shipped one "
        "by name, or a file's path (default: gan, the report's)",
    )
    _add_setting_flags(p, "gan")
    p.add_argument("--run", help="run folder name under storage/gan/ (default: the study name)")
    p.add_argument("--every", type=_positive, default=10, help="checkpoint and image grid every N epochs")
    p.add_argument("--fresh", action="store_true", help="discard the run's checkpoints and start from epoch 0")


def _reproduce_parser(p: argparse.ArgumentParser) -> None:
    # Here rather than beside the workflow (mnist_hpo.workflows.reproduce), which imports the stages.
    p.add_argument("--out", default="results", help="the record's folder (default: results)")
    p.add_argument("--only", help=f"comma-separated parts, in any order (default: all of {REPRODUCE_PARTS})")
    p.add_argument("--workers", type=_positive, help="worker processes per study (default: one per core)")
    _add_setting_flags(p, "reproduce")
    p.add_argument("--gan-epochs", type=_positive, help="override the GAN run's 400 epochs")
    _add_quiet(p)


def _dashboard_parser(p: argparse.ArgumentParser) -> None:
    _add_storage(p)
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default 127.0.0.1, this machine only; another needs --allow-remote)",
    )
    p.add_argument("--port", type=_positive, default=8080, help="the port to listen on (default 8080)")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")


# Each command: its help line and what adds its arguments, in the order --help lists them.
PARSERS = {
    "study": ("run or resume a study, then retrain, test and export its best trial", _study_parser),
    "worker": ("run one worker of a study (several may share one storage)", _worker_parser),
    "export": ("retrain, test and export a study's best trial (or --trial N)", _export_parser),
    "show": ("a study's trial counts and top-5 table", _show_parser),
    "compare": ("anytime curves of several studies by protocol (PNG) and epochs/time to a target", _compare_parser),
    "rerun": ("train one stored trial again as it ran (seed, threads, epochs) and compare the metric", _rerun_parser),
    "verify": (
        "check an export's weights and dataset against their checksums, test them again, compare",
        _verify_parser,
    ),
    "list": ("the studies in the storage", _add_storage),
    "delete": ("delete a study and all its trials, with its exports and attached files", _delete_parser),
    "compact": ("rewrite journal files without superseded attribute writes (no worker running)", _compact_parser),
    "data": (
        "prepare a dataset (download, check, cache once per user: $MNIST_HPO_DATA, else ~/.cache/mnist-hpo), "
        "install (or train, once) its quality classifier, print a summary",
        _data_parser,
    ),
    "explore": ("latent space of an exported autoencoder: Table 5, PCA/t-SNE, k-NN, new images", _explore_parser),
    "report": ("the reproduction report (HTML + Markdown) from the database and exports", _report_parser),
    "gan": ("train the report's GAN (one configuration) with checkpoints, grids and scores", _gan_parser),
    "reproduce": ("every protocol of the report at full size, as a resumable record (results/)", _reproduce_parser),
    "dashboard": ("serve optuna-dashboard on the storage", _dashboard_parser),
}
