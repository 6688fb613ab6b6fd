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

_EXPORTS = {
    "_urls": ("JOURNAL_PREFIX", "artifacts_dir", "check_storage_folder", "check_storage_url", "checkpoints_dir",
              "default_storage_url", "exports_dir", "require_stored", "storage_dir", "storage_file",
              "storage_folder_ready"),
    "_open": ("RetryStaleTrials", "load_existing_study", "open_storage", "storage_label"),
    "_journal": ("OWNER", "fail_stale_trials", "is_journal_url", "is_stale", "journal_lock", "journal_path",
                 "keep_alive", "open_journal", "retried", "retry", "this_process"),
    "_compact": ("Compaction", "compact_journal", "superseded_lines"),
    "_heartbeat": ("GRACE_BEATS", "MAX_RETRY", "heartbeat_interval", "stale_grace"),
    "_rdb": ("WorkerRDBStorage",),
    "_outage": ("DEFAULT_PATIENCE", "impatient", "recently_back", "unreachable"),
    "_artifacts": ("WholeFileArtifactStore", "artifact_store", "attach_files"),
    "_study_uuid": ("UUID_ATTR", "ensure_uuid", "study_uuid"),
    "_study_sources": ("Studies",),
    "_optuna_compat": ("OPTIMIZE_LOGGER", "PRIVATE_NAMES", "StackHeartbeat", "beating_trial_ids", "claim_trial",
                       "new_trial", "optuna_table_names", "quiet_interrupted_trials", "set_params",
                       "set_trial_system_attr", "storage_of", "trial_id"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
