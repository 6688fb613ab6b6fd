"""Where studies are stored, and how a worker keeps using its storage through crashes and outages.

The stage below the search (:mod:`mnist_hpo.hpo`), modelled on Optuna's own ``optuna.storages``:
private modules, whose public names are re-exported here (``from mnist_hpo.storages import
open_storage``). Nothing here knows about models, tasks or the search.

* ``_urls``: storage URLs and folders, checked before Optuna is imported (the command line's checks);
* ``_open``: opening a SQLite or PostgreSQL database or a journal file, loading a stored study;
* ``_journal``: journal files, and the liveness of their trials' workers (Optuna's journal has no heartbeat);
* ``_compact``: rewriting a journal without superseded attribute writes;
* ``_heartbeat``: how often a worker beats for its trial, when a silent one counts as dead;
* ``_rdb``: Optuna's RDB storage as workers use it (no trial left RUNNING for ever);
* ``_outage``: every storage call riding out an outage, up to the patience;
* ``_timeouts``: the bound on each call, derived from the patience;
* ``_artifacts``: files attached to trials and studies;
* ``_study_uuid``: the UUID that tells two studies of one name apart;
* ``_study_sources``: one storage, or a folder of journals, as one source of studies;
* ``_optuna_compat``: every private Optuna name the package uses, in one place.

The names are imported on first use: the command line checks a ``--storage`` URL (``_urls``)
without importing Optuna and SQLAlchemy, which the other modules need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names as mypy sees them; at run time __getattr__ imports each on first use
    from ._artifacts import WholeFileArtifactStore as WholeFileArtifactStore
    from ._artifacts import artifact_store as artifact_store
    from ._artifacts import attach_files as attach_files
    from ._compact import Compaction as Compaction
    from ._compact import compact_journal as compact_journal
    from ._compact import superseded_lines as superseded_lines
    from ._heartbeat import GRACE_BEATS as GRACE_BEATS
    from ._heartbeat import MAX_RETRY as MAX_RETRY
    from ._heartbeat import heartbeat_interval as heartbeat_interval
    from ._heartbeat import stale_grace as stale_grace
    from ._journal import OWNER as OWNER
    from ._journal import fail_stale_trials as fail_stale_trials
    from ._journal import is_journal_url as is_journal_url
    from ._journal import is_stale as is_stale
    from ._journal import journal_lock as journal_lock
    from ._journal import journal_path as journal_path
    from ._journal import keep_alive as keep_alive
    from ._journal import open_journal as open_journal
    from ._journal import retried as retried
    from ._journal import retry as retry
    from ._journal import this_process as this_process
    from ._open import RetryStaleTrials as RetryStaleTrials
    from ._open import load_existing_study as load_existing_study
    from ._open import open_storage as open_storage
    from ._open import storage_label as storage_label
    from ._optuna_compat import OPTIMIZE_LOGGER as OPTIMIZE_LOGGER
    from ._optuna_compat import PRIVATE_NAMES as PRIVATE_NAMES
    from ._optuna_compat import StackHeartbeat as StackHeartbeat
    from ._optuna_compat import beating_trial_ids as beating_trial_ids
    from ._optuna_compat import claim_trial as claim_trial
    from ._optuna_compat import new_trial as new_trial
    from ._optuna_compat import optuna_table_names as optuna_table_names
    from ._optuna_compat import quiet_interrupted_trials as quiet_interrupted_trials
    from ._optuna_compat import set_params as set_params
    from ._optuna_compat import set_trial_system_attr as set_trial_system_attr
    from ._optuna_compat import storage_of as storage_of
    from ._optuna_compat import trial_id as trial_id
    from ._outage import DEFAULT_PATIENCE as DEFAULT_PATIENCE
    from ._outage import impatient as impatient
    from ._outage import recently_back as recently_back
    from ._outage import unreachable as unreachable
    from ._rdb import WorkerRDBStorage as WorkerRDBStorage
    from ._study_sources import Studies as Studies
    from ._study_uuid import UUID_ATTR as UUID_ATTR
    from ._study_uuid import ensure_uuid as ensure_uuid
    from ._study_uuid import study_uuid as study_uuid
    from ._urls import JOURNAL_PREFIX as JOURNAL_PREFIX
    from ._urls import artifacts_dir as artifacts_dir
    from ._urls import check_storage_folder as check_storage_folder
    from ._urls import check_storage_url as check_storage_url
    from ._urls import checkpoints_dir as checkpoints_dir
    from ._urls import default_storage_url as default_storage_url
    from ._urls import exports_dir as exports_dir
    from ._urls import require_stored as require_stored
    from ._urls import storage_dir as storage_dir
    from ._urls import storage_file as storage_file
    from ._urls import storage_folder_ready as storage_folder_ready

_EXPORTS = {
    "_urls": (
        "JOURNAL_PREFIX",
        "artifacts_dir",
        "check_storage_folder",
        "check_storage_url",
        "checkpoints_dir",
        "default_storage_url",
        "exports_dir",
        "require_stored",
        "storage_dir",
        "storage_file",
        "storage_folder_ready",
    ),
    "_open": ("RetryStaleTrials", "load_existing_study", "open_storage", "storage_label"),
    "_journal": (
        "OWNER",
        "fail_stale_trials",
        "is_journal_url",
        "is_stale",
        "journal_lock",
        "journal_path",
        "keep_alive",
        "open_journal",
        "retried",
        "retry",
        "this_process",
    ),
    "_compact": ("Compaction", "compact_journal", "superseded_lines"),
    "_heartbeat": ("GRACE_BEATS", "MAX_RETRY", "heartbeat_interval", "stale_grace"),
    "_rdb": ("WorkerRDBStorage",),
    "_outage": ("DEFAULT_PATIENCE", "impatient", "recently_back", "unreachable"),
    "_artifacts": ("WholeFileArtifactStore", "artifact_store", "attach_files"),
    "_study_uuid": ("UUID_ATTR", "ensure_uuid", "study_uuid"),
    "_study_sources": ("Studies",),
    "_optuna_compat": (
        "OPTIMIZE_LOGGER",
        "PRIVATE_NAMES",
        "StackHeartbeat",
        "beating_trial_ids",
        "claim_trial",
        "new_trial",
        "optuna_table_names",
        "quiet_interrupted_trials",
        "set_params",
        "set_trial_system_attr",
        "storage_of",
        "trial_id",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
