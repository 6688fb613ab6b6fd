"""The study layer: where studies are stored, which sampler and pruner they use, and running them.

This is the only module that knows where storage is. One SQLite database under
``storage/`` holds all the project's studies (one dashboard shows them all);
``MNIST_HPO_STORAGE`` or ``--storage`` points at another URL, e.g. PostgreSQL for
several machines. Storage is Optuna's RDB storage with heartbeats, so a worker
that dies mid-trial leaves a trial that the next worker marks failed and re-runs
with the same parameters.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import sys
import time
import warnings
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import sqlalchemy
import sqlalchemy.exc
import torch
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from ..config import StudyConfig, check_config
from ..data.datasets import Dataset, load_dataset
from ..errors import UserError
from . import journal
from .samplers import CoverGridSampler
from ..artifacts.hardware import hardware
from .objective import make_objective, run_stacked_trials
from .optuna_compat import optuna_table_names
from .spaces import Resolved, grid_space, resolve_space
from ..tasks import check_device, device_source, make_task, task_class

def storage_dir() -> Path:
    return Path(os.environ.get("MNIST_HPO_STORAGE_DIR", "storage"))


FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# A worker's heartbeat every HEARTBEAT_INTERVAL seconds; a trial that misses GRACE_BEATS of them
# counts as dead (its worker was killed or lost), is marked FAIL and re-run up to MAX_RETRY times.
# Tests set MNIST_HPO_HEARTBEAT=1 to see that happen within seconds.
HEARTBEAT_INTERVAL = int(os.environ.get("MNIST_HPO_HEARTBEAT", "20"))
GRACE_BEATS = 3
MAX_RETRY = 3
OPEN_ATTEMPTS = 5
SQLITE_BUSY_TIMEOUT = 60  # seconds a worker waits for another's write to SQLite
MAX_CONSECUTIVE_FAILURES = 3


def default_storage_url() -> str:
    return os.environ.get("MNIST_HPO_STORAGE") or f"sqlite:///{storage_dir() / 'mnist_hpo.db'}"


def exports_dir() -> Path:
    return storage_dir() / "exports"


# --- artifacts (figures attached to trials; optuna-dashboard shows them) ----------------

def artifacts_dir() -> Path:
    return storage_dir() / "artifacts"


def artifact_store() -> optuna.artifacts.FileSystemArtifactStore:
    """Files attached to trials live on this machine's disk, next to the database."""
    artifacts_dir().mkdir(parents=True, exist_ok=True)
    return optuna.artifacts.FileSystemArtifactStore(artifacts_dir())


def attach_files(target, files: list[Path], *, rename: Callable[[Path], str] | None = None) -> list[str]:
    """Attach ``files`` to a running trial or a study (shown under that name, ``rename(f)`` if given); their ids."""
    store = artifact_store()
    ids = []
    with tempfile.TemporaryDirectory() as tmp:
        for f in map(Path, files):
            if rename is not None:
                f = Path(shutil.copy(f, Path(tmp) / rename(f)))
            ids.append(optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(f), study_or_trial=target))
    return ids


def _attach_reconstruction(task):
    """An objective ``after_fit`` hook: attach the trial's reconstructions of fixed validation images."""
    from ..analysis import recon  # matplotlib: imported only by processes that run trials

    def after_fit(trial: optuna.Trial, result) -> None:
        if not recon.reconstructs(result.model):
            return
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = recon.reconstruction_png(
                    recon.validation_images(task), [(f"trial {trial.number}", result.model)],
                    Path(tmp) / f"reconstruction-trial-{trial.number}.png",
                    corrupt=recon.task_corruption(task), title=f"trial {trial.number}: validation images")
                attach_files(trial, [path])
        except Exception as e:  # a figure is not worth losing a trained trial for
            trial.set_user_attr("artifact_error", f"{type(e).__name__}: {e}")

    return after_fit


# --- storage ---------------------------------------------------------------------------

def _check_sqlite_path(url: sqlalchemy.engine.URL) -> None:
    if not url.database or url.database == ":memory:":
        return
    path = Path(url.database)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the storage folder {folder} ({e.strerror}); choose a writable --storage path")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"storage {path} is not writable; fix its permissions or choose another --storage path")
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                raise UserError(f"{path} is not a SQLite database; point --storage at an Optuna database or a new file")


def _refuse_foreign_database(url: sqlalchemy.engine.URL, engine_kwargs: dict) -> None:
    """Optuna adds its tables to whatever database it is given; refuse one that already holds others."""
    engine = sqlalchemy.create_engine(url, **engine_kwargs)
    try:
        tables = set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    foreign = sorted(tables - optuna_table_names())
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise UserError(
            f"{url.render_as_string(hide_password=True)} is not an Optuna database (it holds other tables: {shown}); "
            "point --storage at an Optuna database or a new one"
        )


def _serialize_sqlite_writes(engine: sqlalchemy.engine.Engine) -> None:
    """Begin every SQLite transaction with BEGIN IMMEDIATE (SQLAlchemy's documented pysqlite recipe).

    The sqlite3 module opens a transaction only at the first write, so Optuna's
    read-then-write steps are not atomic between processes: two workers can both see
    a queued retry as WAITING and both run it, and a reader upgrading to a writer can
    get "database is locked" at once, without waiting. Taking the write lock at the
    start makes each step atomic and makes every wait go through the busy timeout.
    PostgreSQL needs none of this (Optuna locks rows with SELECT ... FOR UPDATE).
    """

    @sqlalchemy.event.listens_for(engine, "begin")
    def _begin(conn):  # noqa: ANN001
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _rdb_storage(url: str, engine_kwargs: dict, interval: int, grace: int) -> optuna.storages.RDBStorage:
    with warnings.catch_warnings():
        # Heartbeats and their retry callback are "experimental" since Optuna 2.8; they are what we want.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=interval,
            grace_period=grace,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
        )


def open_storage(
    url: str | None = None, *, heartbeat_interval: int | None = None, grace_period: int | None = None
) -> optuna.storages.RDBStorage:
    """Optuna RDB storage with heartbeats and retry of stale trials, or a journal file (``journal:PATH``).

    Every failure is one clear line.
    """
    url = url or default_storage_url()
    if journal.is_journal_url(url):
        return journal.open_journal(url)
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise UserError(
            f"storage URL {url!r} is malformed; use sqlite:///path/to.db or postgresql+psycopg://user@host/db"
        ) from None
    engine_kwargs: dict = {}
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_path(parsed)
        # Several workers share one file: wait up to a minute for the lock instead of failing at once,
        # and let SQLAlchemy, not the sqlite3 module, open transactions (see _serialize_sqlite_writes).
        engine_kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT, "isolation_level": None}
    elif parsed.get_backend_name() == "postgresql":
        engine_kwargs["pool_pre_ping"] = True
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
    else:
        raise UserError(f"storage backend {parsed.get_backend_name()!r} is not supported; use sqlite or postgresql")
    interval = heartbeat_interval or HEARTBEAT_INTERVAL
    try:
        _refuse_foreign_database(parsed, engine_kwargs)
        for attempt in range(OPEN_ATTEMPTS):
            try:
                storage = _rdb_storage(url, engine_kwargs, interval, grace_period or GRACE_BEATS * interval)
                if parsed.get_backend_name() == "sqlite":
                    _serialize_sqlite_writes(storage.engine)
                return storage
            except sqlalchemy.exc.SQLAlchemyError as e:
                # Workers starting together on a new database race to create Optuna's tables
                # ("table ... already exists", "duplicate key"), or find it locked: the loser tries again.
                text = str(e).lower()
                if attempt + 1 == OPEN_ATTEMPTS or not any(m in text for m in ("already exists", "duplicate", "unique", "locked")):
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError  # unreachable
    except sqlalchemy.exc.OperationalError as e:
        reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e).splitlines()[0]
        raise UserError(f"cannot open storage {parsed.render_as_string(hide_password=True)} ({reason})") from None
    except sqlalchemy.exc.DatabaseError as e:
        raise UserError(
            f"{parsed.render_as_string(hide_password=True)} is not an Optuna database ({str(e.orig or e).splitlines()[0]})"
        ) from None
    except (RuntimeError, ValueError, ModuleNotFoundError, sqlalchemy.exc.SQLAlchemyError) as e:
        raise UserError(f"cannot use storage {parsed.render_as_string(hide_password=True)}: {str(e).splitlines()[0]}") from None


# --- samplers and pruners --------------------------------------------------------------

class TrialSeededRandomSampler(optuna.samplers.RandomSampler):
    """Random search where trial N always draws the same parameters.

    The draw depends only on (seed, trial number, parameter name), so a resumed
    study, or one run by several workers, explores exactly the sequence a single
    uninterrupted run would. It draws as Optuna's ``RandomSampler`` does (one uniform
    number per parameter in its transformed space, one per choice for a categorical)
    from a generator of its own for each (trial, parameter), using only the
    distributions' public fields; tests/hpo/test_optuna_compat.py checks the draws agree.
    """

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self._base_seed = seed

    def sample_independent(self, study, trial, param_name, param_distribution):
        seq = np.random.SeedSequence([self._base_seed, trial.number, zlib.crc32(param_name.encode())])
        return _uniform_draw(np.random.RandomState(seq.generate_state(1)[0]), param_distribution)


def _uniform_draw(rng: np.random.RandomState, d: optuna.distributions.BaseDistribution):
    """One draw of ``RandomSampler`` from ``d``: uniform in log space for log ranges, rounded to steps."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(d, CategoricalDistribution):
        return d.choices[int(rng.uniform(np.zeros(len(d.choices)), np.ones(len(d.choices))).argmax())]
    if isinstance(d, FloatDistribution):
        if d.log:
            x = math.exp(rng.uniform(math.log(d.low), math.log(d.high)))
            return x if d.low == d.high else float(np.clip(x, d.low, np.nextafter(d.high, d.high - 1)))
        if d.step is not None:
            x = rng.uniform(d.low - 0.5 * d.step, d.high + 0.5 * d.step)
            return float(np.clip(np.round((x - d.low) / d.step) * d.step + d.low, d.low, d.high))
        x = rng.uniform(d.low, d.high)
        return x if d.low == d.high else min(x, np.nextafter(d.high, d.high - 1))
    if isinstance(d, IntDistribution):
        if d.log:
            x = rng.uniform(math.log(d.low - 0.5 * d.step), math.log(d.high + 0.5 * d.step))
            return min(max(int(round(math.exp(x))), d.low), d.high)
        x = rng.uniform(d.low - 0.5 * d.step, d.high + 0.5 * d.step)
        return min(max(math.floor((x - d.low) / d.step + 0.5) * d.step + d.low, d.low), d.high)
    raise TypeError(f"unsupported distribution {d!r}")


class _ReseededPerTrial:
    """Mixin for a model-based sampler: its random streams restart from (seed, trial number) at each trial.

    Workers started together see the same history; seeded once per process, they would
    all propose the same first trials. The trial number is handed out by the storage, one
    per trial, so each trial's stream is distinct by construction, in however many workers,
    and a trial's proposal depends only on (seed, its number, the trials finished before
    it): one uninterrupted run, a resumed one and a single worker make the same proposals.
    """

    _inner: str  # the attribute holding the sampler's own RandomSampler (startup and fallback draws)

    def __init__(self, seed: int, **options) -> None:
        super().__init__(seed=seed, **options)
        self._base_seed = seed
        # Optuna's private attributes, checked here so that a renamed one fails loudly, not silently.
        assert hasattr(self, "_rng") and isinstance(getattr(self, self._inner), optuna.samplers.RandomSampler)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        model_state, random_state = np.random.SeedSequence([self._base_seed, trial.number]).generate_state(2)
        self._rng.rng.seed(int(model_state))
        getattr(self, self._inner)._rng.rng.seed(int(random_state))
        super().before_trial(study, trial)


class TrialSeededTPESampler(_ReseededPerTrial, optuna.samplers.TPESampler):
    """TPE whose draws for trial N come from (seed, N) and the history (see :class:`_ReseededPerTrial`)."""

    _inner = "_random_sampler"


class TrialSeededGPSampler(_ReseededPerTrial, optuna.samplers.GPSampler):
    """The GP sampler, reseeded per trial like :class:`TrialSeededTPESampler`."""

    _inner = "_independent_sampler"


def make_sampler(cfg: StudyConfig, resolved: Resolved) -> optuna.samplers.BaseSampler:
    opts = dict(cfg.sampler.options)
    seed = int(opts.pop("seed", cfg.seed))
    kind = cfg.sampler.type
    if kind == "random":
        return TrialSeededRandomSampler(seed)
    if kind == "grid":
        return CoverGridSampler(grid_space(resolved), seed=seed)
    if kind == "tpe":
        return TrialSeededTPESampler(seed, **opts)
    if kind == "gp":
        try:
            return TrialSeededGPSampler(seed, **opts)
        except ImportError as e:
            raise UserError(f"the GP sampler needs an extra package ({e}); pip install scipy, or use tpe") from None
    raise UserError(f"{cfg.source}: unknown sampler {kind!r}")


def make_pruner(cfg: StudyConfig) -> optuna.pruners.BasePruner:
    opts = dict(cfg.pruner.options)
    kind = cfg.pruner.type
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "median":
        return optuna.pruners.MedianPruner(**opts)
    if kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(**opts)
    if kind == "hyperband":
        opts.setdefault("max_resource", cfg.epochs)
        return optuna.pruners.HyperbandPruner(**opts)
    raise UserError(f"{cfg.source}: unknown pruner {kind!r}")


# --- studies ---------------------------------------------------------------------------

def _jsonable_space(resolved: Resolved) -> dict:
    return {k: (v if isinstance(v, list) else {"range": v.kind, "low": v.low, "high": v.high, "log": v.log})
            for k, v in resolved.items()}


# What a resume or a joining worker may change: none of it changes what a trial's value means.
# Everything else that does is in the study's identity (study_identity) and must match.
MAY_CHANGE = ("trials", "device", "batch_trials", "retrain", "workers", "max_trials", "progress (--quiet)")
_STUDY_SETTINGS = ("dataset", "idx_dir", "train_subset", "test_subset", "batch_size", "val_fraction", "seed", "epochs")


def study_identity(cfg: StudyConfig, resolved: Resolved, dataset_checksum: str) -> dict:
    """Everything that decides what a trial's value means, as ``setting -> value`` (JSON-able).

    Stored as the study's user attribute ``identity`` when it is created and compared on every
    resume and every worker join (:func:`check_identity`). The setting names are the study
    file's keys (``study.train_subset``, ``sampler.n_startup_trials``, ``model.noise_std``,
    ``space.lr`` with its resolved list), plus ``dataset.sha256`` (the data's content checksum).
    """
    config = json.loads(json.dumps(cfg.as_dict(), default=str))
    return _identity(config, _jsonable_space(resolved), dataset_checksum)


def _identity(config: dict, space: dict | None, dataset_checksum: str | None) -> dict:
    """The identity of a config as stored (``StudyConfig.as_dict``); what the config lacks is left out."""
    out: dict = {}
    if "model" in config:
        out["model.type"] = config["model"]
    for key in _STUDY_SETTINGS:
        if key in config:
            out[f"study.{key}"] = config[key]
    if dataset_checksum is not None:
        out["dataset.sha256"] = dataset_checksum
    for key, value in (config.get("model_options") or {}).items():
        out[f"model.{key}"] = value
    for part in ("sampler", "pruner"):
        if part not in config:
            continue
        out[f"{part}.type"] = config[part].get("type")
        options = dict(config[part].get("options") or {})
        # The values that apply when the file leaves them out (see make_sampler, make_pruner).
        if part == "sampler" and "seed" in config:
            options.setdefault("seed", config["seed"])
        if part == "pruner" and out["pruner.type"] == "hyperband" and "epochs" in config:
            options.setdefault("max_resource", config["epochs"])
        for key, value in options.items():
            out[f"{part}.{key}"] = value
    for name, values in (space or {}).items():
        out[f"space.{name}"] = values
    return out


def stored_identity(attrs: dict) -> tuple[dict, bool]:
    """(the identity a study was created with, whether it is complete).

    Studies made before the ``identity`` attribute existed have their creation config and
    resolved space: their identity is rebuilt from those (without the dataset checksum),
    and only what they recorded is compared.
    """
    if "identity" in attrs:
        return attrs["identity"], True
    identity = _identity(attrs.get("config") or {}, attrs.get("space"), None)
    for attr, key in (("model", "model.type"), ("epochs", "study.epochs"), ("dataset", "study.dataset")):
        if attr in attrs:
            identity.setdefault(key, attrs[attr])
    return identity, False


def identity_differences(stored: dict, now: dict, *, complete: bool = True) -> list[str]:
    """``key: stored X, now Y`` for every setting that differs (only the stored keys unless ``complete``)."""
    keys = sorted(set(stored) | set(now)) if complete else sorted(stored)

    def shown(d: dict, key: str) -> str:
        return json.dumps(d[key]) if key in d else "unset"

    return [f"{key}: stored {shown(stored, key)}, now {shown(now, key)}"
            for key in keys if stored.get(key, ...) != now.get(key, ...)]


def check_identity(cfg: StudyConfig, attrs: dict, identity: dict) -> None:
    """Refuse to add trials to a study created with other settings; one line naming each difference."""
    stored, complete = stored_identity(attrs)
    differences = identity_differences(stored, json.loads(json.dumps(identity)), complete=complete)
    if differences:
        raise UserError(
            f"study {cfg.name!r} was created with other settings ({'; '.join(differences)}); its trials would "
            f"not be comparable with new ones, and only {', '.join(MAY_CHANGE)} may change; use --study-name NEW "
            f"to start a separate study, or 'mnist-hpo delete {cfg.name} --yes' to discard this one"
        )


def open_study(cfg: StudyConfig, storage: optuna.storages.BaseStorage, *,
               dataset_checksum: str | None = None) -> optuna.Study:
    """Create the study, or load it and check that it was made with the same settings (nothing stored if not).

    ``dataset_checksum`` is the content checksum of ``cfg``'s dataset; it is loaded when not given.
    """
    resolved = resolve_space(cfg.space, cfg.seed)
    if dataset_checksum is None:
        dataset_checksum = load_data(cfg).checksum
    identity = study_identity(cfg, resolved, dataset_checksum)
    try:
        existing = optuna.load_study(study_name=cfg.name, storage=storage)
    except KeyError:
        existing = None
    if existing is not None:
        check_identity(cfg, existing.user_attrs, identity)
    sampler, pruner = make_sampler(cfg, resolved), make_pruner(cfg)
    if existing is not None:  # load, not create: create_study appends a no-op line to a journal every time
        return optuna.load_study(study_name=cfg.name, storage=storage, sampler=sampler, pruner=pruner)
    study = optuna.create_study(
        storage=storage,
        study_name=cfg.name,
        direction=task_class(cfg.model).direction,
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    if existing is None:
        study.set_user_attr("identity", identity)
        study.set_user_attr("config", json.loads(json.dumps(cfg.as_dict(), default=str)))
        study.set_user_attr("space", _jsonable_space(resolved))
        study.set_user_attr("seed", cfg.seed)
        study.set_user_attr("epochs", cfg.epochs)
        study.set_user_attr("model", cfg.model)
        study.set_user_attr("dataset", cfg.dataset)
        # Another process may have created the same study at the same instant with other settings:
        # the identity stored last holds, and whoever wrote another one is refused here.
        check_identity(cfg, optuna.load_study(study_name=cfg.name, storage=storage).user_attrs, identity)
    return study


def load_existing_study(name: str, storage_url: str | None = None) -> optuna.Study:
    storage = open_storage(storage_url)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = ", ".join(s.study_name for s in optuna.get_all_study_summaries(storage)) or "none"
        raise UserError(f"no study named {name!r} in {storage_url or default_storage_url()} (studies there: {names})") from None


def finished_trials(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=FINISHED)


def best_trial(study: optuna.Study) -> FrozenTrial:
    """The best complete trial with a finite value; a clear error when there is none."""
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if t.value is not None and math.isfinite(t.value)]
    if not trials:
        raise UserError(f"study {study.study_name!r} has no complete trial yet; run the study first")
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return sorted(trials, key=lambda t: t.value, reverse=reverse)[0]


def load_data(cfg: StudyConfig) -> Dataset:
    return load_dataset(cfg.dataset, idx_dir=Path(cfg.idx_dir) if cfg.idx_dir else None)


def set_threads(workers: int) -> int:
    """Split the machine's cores among the workers so that workers × threads does not oversubscribe them."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // max(1, workers))
    torch.set_num_threads(threads)
    return threads


class _FailureGuard:
    """Stops the study when several trials in a row fail (every trial failing means a bug, not bad luck)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.run, self.last_error = limit, 0, ""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state == TrialState.FAIL:
            self.run += 1
            self.last_error = trial.user_attrs.get("error", "unknown error")
            if self.run >= self.limit:
                study.stop()
        else:
            self.run = 0

    def raise_if_tripped(self) -> None:
        if self.run >= self.limit:
            raise UserError(
                f"{self.limit} trials in a row failed, so the study stopped "
                f"(last error: {self.last_error}); finished trials are kept; "
                "fix the cause and run again to resume"
            )


def trials_wanted(study: optuna.Study, cfg: StudyConfig) -> int:
    """How many trials a worker should start now (the stacked loop asks for up to that many at once).

    Queued (WAITING) retries always run. Beyond them, trials start only while the trials
    finished, running or queued fall short of the target (for a grid: while some point
    is neither covered nor being run), so workers sharing a study stop together instead
    of each running to its own count.
    """
    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state for t in trials)
    waiting = states[TrialState.WAITING]
    sampler = study.sampler
    if isinstance(sampler, CoverGridSampler):
        # A trial just asked for has no point yet, but will take one (queued retries keep theirs).
        unplaced = sum(1 for t in trials if t.state == TrialState.RUNNING
                       and "grid_id" not in t.system_attrs and "fixed_params" not in t.system_attrs)
        taken = sampler.size - sampler.open_points(study) + unplaced
        return waiting + max(0, min(cfg.trials, sampler.size) - taken)
    taken = states[TrialState.COMPLETE] + states[TrialState.PRUNED] + states[TrialState.RUNNING] + waiting
    return waiting + max(0, cfg.trials - taken)


def needs_trials(study: optuna.Study, cfg: StudyConfig) -> bool:
    """Whether a worker should start another trial now (see :func:`trials_wanted`)."""
    return trials_wanted(study, cfg) > 0


def fail_stale_trials(study: optuna.Study) -> None:
    """Mark trials whose worker stopped sending heartbeats FAIL and queue their retries.

    RDB storage: Optuna's heartbeats. Journal storage has none: trials claimed by a process
    that is gone (see :mod:`mnist_hpo.hpo.journal`); on RDB storage no trial is claimed that way.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    journal.fail_stale_trials(study, grace=GRACE_BEATS * HEARTBEAT_INTERVAL)


def requeue_interrupted(study: optuna.Study, numbers: list[int]) -> None:
    """After Ctrl-C: queue this process's interrupted trials again (same parameters and seed), so no draw is lost."""
    for trial in study.get_trials(deepcopy=False):
        if trial.number in numbers and trial.state == TrialState.FAIL and "error" not in trial.user_attrs:
            journal.retry(study, trial)


def _taken_over(study: optuna.Study, current: dict) -> bool:
    """Whether this worker's trial was finished by someone else (marked stale while it still ran)."""
    if "number" not in current:
        return False
    # A trial's number is unique within its study, so it identifies the trial as well as its storage id.
    return any(t.number == current["number"] and t.state != TrialState.RUNNING
               for t in study.get_trials(deepcopy=False))


def run_study(
    cfg: StudyConfig,
    *,
    storage_url: str | None = None,
    data: Dataset | None = None,
    progress: bool = True,
    workers: int | None = None,
    max_trials: int | None = None,
    extra_callbacks: list[Callable] | None = None,
    on_open: Callable[[optuna.Study], None] | None = None,
) -> optuna.Study:
    """Run (or resume) the study until ``cfg.trials`` trials have finished; returns the study.

    Only missing trials are run, and any number of these calls (workers) may share
    one storage. When the target is reached, a worker waits for the trials still
    running elsewhere: those of live workers end normally, those of dead workers
    miss their heartbeats, are marked FAIL and re-run here with the same parameters
    and seed. So when this returns, no trial of the study is RUNNING.

    ``on_open(study)`` is called once the study is created or its settings are found to
    match (the command line prints the search space then, not before a refusal).

    ``max_trials`` caps the trials this call runs (a worker with a time slot); such a
    worker returns as soon as it has run them. ``extra_callbacks`` are called as
    ``optimize`` calls its callbacks, after each trial; one that calls ``study.stop()``
    ends this call (not only the current ``optimize``).

    Ctrl-C propagates as KeyboardInterrupt after Optuna has marked the interrupted
    trial failed; finished trials are in storage.
    """
    # Everything that can be refused is, before the study is created or changed.
    check_config(cfg)  # a config built in Python is checked as a study file is
    task_class(cfg.model).check_resolved(cfg)  # not created with unresolved options
    check_device(cfg.device, device_source(cfg, None))
    data = data if data is not None else load_data(cfg)  # its checksum is part of the study's identity
    storage = open_storage(storage_url)
    study = open_study(cfg, storage, dataset_checksum=data.checksum)
    if on_open is not None:
        on_open(study)
    fail_stale_trials(study)
    if not needs_trials(study, cfg) and not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        return study
    if workers:
        set_threads(workers)
    task = make_task(cfg, data)
    objective = make_objective(task, resolve_space(cfg.space, cfg.seed), epochs=cfg.epochs, progress=progress,
                               after_fit=_attach_reconstruction(task))

    bar = tqdm(total=cfg.trials, initial=len(finished_trials(study)), desc=f"study {cfg.name}", unit="trial",
               disable=not progress)

    def on_trial(study: optuna.Study, trial: FrozenTrial) -> None:
        bar.n = len(finished_trials(study))
        best = [t.value for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        if best:
            bar.set_postfix(best=f"{(max if study.direction.name == 'MAXIMIZE' else min)(best):.4g}")
        bar.refresh()

    study.set_user_attr("hardware", hardware(str(task.device)))  # the machine of the latest run, for the report
    guard = _FailureGuard(MAX_CONSECUTIVE_FAILURES)
    if cfg.batch_trials > 1:
        return _run_stacked(cfg, study, task, bar, progress, storage=storage, guard=guard,
                            callbacks=[on_trial, guard, *(extra_callbacks or [])], max_trials=max_trials)
    ran = [0]

    def stop_when_done(study: optuna.Study, trial: FrozenTrial) -> None:
        ran[0] += 1
        if not needs_trials(study, cfg) or (max_trials and ran[0] >= max_trials):
            study.stop()

    current: dict = {}

    uses_journal = isinstance(storage, optuna.storages.JournalStorage)

    def tracked(trial: optuna.Trial) -> float:
        current.update(number=trial.number)
        if not uses_journal:
            return objective(trial)
        with journal.keep_alive(trial, interval=HEARTBEAT_INTERVAL):  # the journal's stand-in for heartbeats
            return objective(trial)

    asked_to_stop = [False]

    def user_callback(callback: Callable) -> Callable:
        def call(study: optuna.Study, trial: FrozenTrial) -> None:
            view = _StudyView(study)
            callback(view, trial)
            if view.stopped:
                asked_to_stop[0] = True
                study.stop()
        return call

    callbacks = [on_trial, guard, *map(user_callback, extra_callbacks or []), stop_when_done]
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        while not (max_trials and ran[0] >= max_trials) and not asked_to_stop[0]:
            fail_stale_trials(study)
            if needs_trials(study, cfg):
                try:
                    study.optimize(tracked, n_trials=None, callbacks=callbacks, catch=(Exception,),
                                   gc_after_trial=False)
                except (optuna.exceptions.UpdateFinishedTrialError, ValueError, AssertionError):
                    if not _taken_over(study, current):
                        raise
                    print(f"mnist-hpo: trial {current['number']} missed its heartbeats and was failed by another "
                          "worker (this machine is overloaded?); it is retried, this worker goes on", file=sys.stderr)
                    continue
                except KeyboardInterrupt:
                    requeue_interrupted(study, [current["number"]] if "number" in current else [])
                    raise
                guard.raise_if_tripped()
            elif study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                time.sleep(min(HEARTBEAT_INTERVAL, 2))  # trials running elsewhere: wait for them or their retries
            else:
                break
        return study
    finally:
        optuna.logging.set_verbosity(verbosity)
        bar.close()


class _StudyView:
    """The study as ``run_study``'s callbacks see it: ``stop()`` ends ``run_study``, not one ``optimize``.

    ``run_study`` calls ``optimize`` in a loop (workers wait for each other's trials), and the
    stacked loop asks for and tells trials itself, where ``optuna.Study.stop`` does not work;
    so a callback's ``stop()`` is recorded here and honoured by both. Everything else is the study's.
    """

    def __init__(self, study: optuna.Study) -> None:
        self._study, self.stopped = study, False

    def stop(self) -> None:
        self.stopped = True

    def __getattr__(self, name: str):
        return getattr(self._study, name)


def _run_stacked(cfg: StudyConfig, study: optuna.Study, task, bar, progress: bool, *,
                 storage: optuna.storages.BaseStorage, guard: _FailureGuard, callbacks: list[Callable],
                 max_trials: int | None) -> optuna.Study:
    """The study loop when ``batch_trials`` > 1: ask for up to that many trials at a time, train them together.

    The same rules as the single-trial loop in :func:`run_study`: a stack holds only the
    trials the shared target still lacks (:func:`trials_wanted`, which for a grid counts
    the points neither covered nor being run), queued retries first; once nothing is
    lacking, the worker waits for trials running elsewhere (or their retries) instead of
    returning while they run. After each stack, the callbacks see each of its trials as
    ``optimize`` would show them.
    """
    resolved = resolve_space(cfg.space, cfg.seed)
    view, ran = _StudyView(study), 0
    claim = (lambda trials: journal.keep_alive(trials, interval=HEARTBEAT_INTERVAL)) \
        if isinstance(storage, optuna.storages.JournalStorage) else None
    try:
        while not view.stopped and not (max_trials and ran >= max_trials):
            fail_stale_trials(study)
            k = min(cfg.batch_trials, trials_wanted(study, cfg), (max_trials - ran) if max_trials else cfg.batch_trials)
            if k > 0:
                started: list[int] = []
                try:
                    numbers = run_stacked_trials(study, task, resolved, epochs=cfg.epochs, k=k, storage=storage,
                                                 progress=progress, started=started, claim=claim)
                except KeyboardInterrupt:
                    requeue_interrupted(study, started)
                    raise
                ran += len(numbers)
                for trial in study.get_trials(deepcopy=False):
                    if trial.number in numbers:
                        for callback in callbacks:
                            callback(view, trial)
                guard.raise_if_tripped()
                bar.n = len(finished_trials(study))
                bar.refresh()
            elif study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                time.sleep(min(HEARTBEAT_INTERVAL, 2))  # trials running elsewhere: wait for them or their retries
            else:
                break
    finally:
        bar.close()
    return study
