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
import types
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import sqlalchemy
import sqlalchemy.exc
import torch
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from .config import StudyConfig
from .data import Dataset, load_dataset
from .errors import UserError
from .machine import hardware
from .objective import make_objective, run_stacked_trials
from .spaces import Resolved, grid_space, resolve_space
from .tasks import make_task

def storage_dir() -> Path:
    return Path(os.environ.get("MNIST_HPO_STORAGE_DIR", "storage"))


FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
HEARTBEAT_INTERVAL = int(os.environ.get("MNIST_HPO_HEARTBEAT", "10"))
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
    from . import recon  # matplotlib: imported only by processes that run trials

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


def open_storage(
    url: str | None = None, *, heartbeat_interval: int | None = None, grace_period: int | None = None
) -> optuna.storages.RDBStorage:
    """Optuna RDB storage with heartbeats and retry of stale trials; every failure is one clear line."""
    url = url or default_storage_url()
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise UserError(
            f"storage URL {url!r} is malformed; use sqlite:///path/to.db or postgresql+psycopg://user@host/db"
        ) from None
    engine_kwargs: dict = {}
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_path(parsed)
        # Several workers share one file: wait for the lock instead of failing at once.
        engine_kwargs["connect_args"] = {"timeout": 60}
    elif parsed.get_backend_name() == "postgresql":
        engine_kwargs["pool_pre_ping"] = True
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
    else:
        raise UserError(f"storage backend {parsed.get_backend_name()!r} is not supported; use sqlite or postgresql")
    interval = heartbeat_interval or HEARTBEAT_INTERVAL
    try:
        with warnings.catch_warnings():
            # Heartbeats and their retry callback are "experimental" since Optuna 2.8; they are what we want.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=interval,
                grace_period=grace_period or 3 * interval,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
            )
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
    uninterrupted run would.
    """

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self._base_seed = seed

    def sample_independent(self, study, trial, param_name, param_distribution):
        seq = np.random.SeedSequence([self._base_seed, trial.number, zlib.crc32(param_name.encode())])
        # RandomSampler draws from self._rng.rng; give it a generator for this (trial, param) only.
        self._rng = types.SimpleNamespace(rng=np.random.RandomState(seq.generate_state(1)[0]))
        return super().sample_independent(study, trial, param_name, param_distribution)


class ResumableGridSampler(optuna.samplers.GridSampler):
    """Grid search where a point whose trial failed in an earlier run is evaluated again.

    Optuna's GridSampler counts every finished trial, FAIL included, as a visited
    point, so a crashed or interrupted point would never be retried (and once the
    grid looks exhausted it re-evaluates random points). Here a point counts as
    visited when a trial of it completed or was pruned (diverged), or failed in
    this run: a single run evaluates every point once and stops; the next run
    evaluates only the missing and the failed points.
    """

    def __init__(self, search_space, *, seed: int, n_existing: int) -> None:
        super().__init__(search_space, seed=seed)
        self._n_existing = n_existing  # trials numbered below this were there before this run

    def _get_unvisited_grid_ids(self, study: optuna.Study) -> list[int]:
        visited, running = set(), set()
        for t in study._storage.get_all_trials(study._study_id, deepcopy=False):
            if "grid_id" not in t.system_attrs or not self._same_search_space(t.system_attrs["search_space"]):
                continue
            if t.state in FINISHED or (t.state == TrialState.FAIL and t.number >= self._n_existing):
                visited.add(t.system_attrs["grid_id"])
            elif t.state == TrialState.RUNNING:
                running.add(t.system_attrs["grid_id"])
        # A point another worker is running is not handed out again: when only such points are
        # left, this worker stops (GridSampler.after_trial stops the study on an empty list).
        return sorted(set(range(self._n_min_trials)) - visited - running)

    def after_trial(self, study, trial, state, values) -> None:
        try:
            super().after_trial(study, trial, state, values)
        except RuntimeError:
            # GridSampler stops the study when the grid is done; outside optimize() (stacked
            # trials told one by one) Study.stop refuses, and that loop counts trials itself.
            pass


def make_sampler(cfg: StudyConfig, resolved: Resolved, n_existing: int) -> optuna.samplers.BaseSampler:
    opts = dict(cfg.sampler.options)
    seed = int(opts.pop("seed", cfg.seed))
    kind = cfg.sampler.type
    if kind == "random":
        return TrialSeededRandomSampler(seed)
    if kind == "grid":
        return ResumableGridSampler(grid_space(resolved), seed=seed, n_existing=n_existing)
    # Model-based samplers: offset the seed on resume so a restart does not replay the same proposals.
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed + n_existing, **opts)
    if kind == "gp":
        try:
            return optuna.samplers.GPSampler(seed=seed + n_existing, **opts)
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


def open_study(cfg: StudyConfig, storage: optuna.storages.BaseStorage, *, n_existing_hint: int = 0) -> optuna.Study:
    """Create the study, or load it and check that it was made by the same definition."""
    from .tasks import task_class

    resolved = resolve_space(cfg.space, cfg.seed)
    direction = task_class(cfg.model).direction
    try:
        existing = optuna.load_study(study_name=cfg.name, storage=storage)
    except KeyError:
        existing = None
    if existing is not None:
        _check_compatible(cfg, existing, resolved)
        n_existing = len(existing.get_trials(deepcopy=False))
    else:
        n_existing = 0
    study = optuna.create_study(
        storage=storage,
        study_name=cfg.name,
        direction=direction,
        sampler=make_sampler(cfg, resolved, n_existing),
        pruner=make_pruner(cfg),
        load_if_exists=True,
    )
    if existing is None:
        study.set_user_attr("config", json.loads(json.dumps(cfg.as_dict(), default=str)))
        study.set_user_attr("space", _jsonable_space(resolved))
        study.set_user_attr("seed", cfg.seed)
        study.set_user_attr("epochs", cfg.epochs)
        study.set_user_attr("model", cfg.model)
        study.set_user_attr("dataset", cfg.dataset)
    return study


def _check_compatible(cfg: StudyConfig, study: optuna.Study, resolved: Resolved) -> None:
    attrs = study.user_attrs
    hint = f"use --study-name to start a separate study, or 'mnist-hpo delete {cfg.name}' to discard it"
    if attrs.get("model") not in (None, cfg.model):
        raise UserError(f"study {cfg.name!r} holds {attrs['model']} trials, not {cfg.model}; {hint}")
    if attrs.get("epochs") not in (None, cfg.epochs):
        raise UserError(
            f"study {cfg.name!r} was run with {attrs['epochs']} epochs per trial, this run asks for {cfg.epochs}; "
            f"mixing them would compare unlike trials; {hint}"
        )
    if attrs.get("space") not in (None, _jsonable_space(resolved)):
        raise UserError(f"study {cfg.name!r} was created with a different search space or seed; {hint}")
    stored_options = (attrs.get("config") or {}).get("model_options")
    options = json.loads(json.dumps(cfg.model_options, default=str))
    if stored_options is not None and stored_options != options:
        changed = ", ".join(f"{k}: {stored_options.get(k)!r} -> {options.get(k)!r}"
                            for k in sorted(set(stored_options) | set(options)) if stored_options.get(k) != options.get(k))
        raise UserError(f"study {cfg.name!r} was run with other model options ({changed}); {hint}")
    if attrs.get("dataset") not in (None, cfg.dataset):
        raise UserError(f"study {cfg.name!r} was run on {attrs['dataset']}, not {cfg.dataset}; {hint}")


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
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
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


def run_study(
    cfg: StudyConfig,
    *,
    storage_url: str | None = None,
    data: Dataset | None = None,
    progress: bool = True,
    workers: int | None = None,
    extra_callbacks: list[Callable] | None = None,
) -> optuna.Study:
    """Run (or resume) the study until ``cfg.trials`` trials have finished; returns the study.

    Only missing trials are run. Ctrl-C propagates as KeyboardInterrupt after
    Optuna has marked the interrupted trial failed; finished trials are in storage.
    """
    storage = open_storage(storage_url)
    study = open_study(cfg, storage)
    done = len(finished_trials(study))
    if done >= cfg.trials:
        return study
    if workers:
        set_threads(workers)
    data = data if data is not None else load_data(cfg)
    task = make_task(cfg, data)
    objective = make_objective(task, resolve_space(cfg.space, cfg.seed), epochs=cfg.epochs, progress=progress,
                               after_fit=_attach_reconstruction(task))

    bar = tqdm(total=cfg.trials, initial=done, desc=f"study {cfg.name}", unit="trial", disable=not progress)

    def on_trial(study: optuna.Study, trial: FrozenTrial) -> None:
        bar.n = len(finished_trials(study))
        try:
            bar.set_postfix(best=f"{study.best_value:.4g}")
        except ValueError:
            pass
        bar.refresh()

    study.set_user_attr("hardware", hardware(str(task.device)))  # the machine of the latest run, for the report
    if cfg.batch_trials > 1:
        return _run_stacked(cfg, study, task, bar, progress)

    guard = _FailureGuard(MAX_CONSECUTIVE_FAILURES)
    callbacks = [optuna.study.MaxTrialsCallback(cfg.trials, states=FINISHED), on_trial, guard, *(extra_callbacks or [])]
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study.optimize(objective, n_trials=None, callbacks=callbacks, catch=(Exception,), gc_after_trial=False)
    finally:
        optuna.logging.set_verbosity(verbosity)
        bar.close()
    if guard.run >= guard.limit:
        raise UserError(
            f"{guard.limit} trials in a row failed, so the study stopped (last error: {guard.last_error}); "
            "finished trials are kept; fix the cause and run again to resume"
        )
    return study


def _run_stacked(cfg: StudyConfig, study: optuna.Study, task, bar, progress: bool) -> optuna.Study:
    """The study loop when ``batch_trials`` > 1: ask for that many trials at a time, train them together."""
    resolved = resolve_space(cfg.space, cfg.seed)
    target = cfg.trials
    if cfg.sampler.type == "grid":  # a grid is done when every point is: never re-run points to fill a count
        target = min(target, math.prod(len(v) for v in grid_space(resolved).values()))
    try:
        while (done := len(finished_trials(study))) < target:
            run_stacked_trials(study, task, resolved, epochs=cfg.epochs, k=min(cfg.batch_trials, target - done),
                               progress=progress)
            bar.n = len(finished_trials(study))
            bar.refresh()
    finally:
        bar.close()
    return study
