"""The private Optuna names this project relies on still exist and behave as used (see mnist_hpo/storages/_optuna_compat.py).

A new Optuna that renames or changes one of them fails here, by name, rather than a
study misbehaving. The sampler checks compare our own copies (the grid order, the random
draws) with what Optuna's own samplers do, through their private fields on purpose.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
import types
import warnings
import zlib

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from mnist_hpo.hpo.samplers import CoverGridSampler, TrialSeededRandomSampler
from mnist_hpo.hpo.supervision import fail_stale_trials
from mnist_hpo.storages import _optuna_compat as C
from mnist_hpo.storages import open_storage


@pytest.fixture
def rdb(tmp_path):
    return open_storage(f"sqlite:///{tmp_path / 'compat.db'}", heartbeat_interval=1, grace_period=2)


def test_trial_ids_are_what_the_storage_keys_trials_by(rdb):
    study = optuna.create_study(storage=rdb, study_name="ids")
    trial = study.ask()
    assert isinstance(C.trial_id(trial), int)
    assert rdb.get_trial(C.trial_id(trial)).number == trial.number
    frozen = study.get_trials(deepcopy=False)[0]
    assert C.trial_id(frozen) == C.trial_id(trial)


def test_samplers_can_set_system_attrs(rdb):
    study = optuna.create_study(storage=rdb, study_name="attrs")
    study.ask()
    frozen = study.get_trials(deepcopy=False)[0]
    C.set_trial_system_attr(study, frozen, "grid_id", 3)
    assert study.get_trials(deepcopy=False)[0].system_attrs["grid_id"] == 3


def test_stack_heartbeat_keeps_trials_alive_and_lets_them_go_stale(rdb):
    assert callable(rdb.record_heartbeat) and rdb.get_heartbeat_interval() == 1
    study = optuna.create_study(storage=rdb, study_name="beats")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        kept, dropped = study.ask(), study.ask()
    with C.StackHeartbeat(rdb, [C.trial_id(kept), C.trial_id(dropped)]) as beat:
        beat.discard(C.trial_id(dropped))
        time.sleep(3.5)  # past the grace period: only the trial still in the stack is alive
        fail_stale_trials(study)
        states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
        assert states[kept.number] == TrialState.RUNNING and states[dropped.number] == TrialState.FAIL
    # A storage without heartbeats gets no thread.
    plain = optuna.storages.InMemoryStorage()
    with C.StackHeartbeat(plain, [0]) as beat:
        assert beat._thread is None


def test_beating_trial_ids_reads_optunas_heartbeat_table(rdb):
    study = optuna.create_study(storage=rdb, study_name="beating")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        beaten, unbeaten = study.ask(), study.ask()
    rdb.record_heartbeat(C.trial_id(beaten))
    assert C.beating_trial_ids(rdb, [C.trial_id(beaten), C.trial_id(unbeaten)]) == {C.trial_id(beaten)}
    assert C.beating_trial_ids(rdb, []) == set()


def _has_parameters(owner: type, name: str, expected: tuple[str, ...]) -> bool:
    """Whether ``owner.name`` is a method whose parameters after ``self`` are ``expected``, in that order."""
    method = getattr(owner, name, None)
    return callable(method) and tuple(inspect.signature(method).parameters)[1:] == expected


def _private_name_checks(rdb) -> dict:
    """One check per name of C.PRIVATE_NAMES, against the installed Optuna: True when it holds."""
    study = optuna.create_study(storage=rdb, study_name="private-names")
    trial = study.ask()
    frozen = study.get_trials(deepcopy=False)[0]
    (summary,) = rdb.get_all_studies()
    tpe, gp = optuna.samplers.TPESampler(seed=0), optuna.samplers.GPSampler(seed=0)
    journal_ops = optuna.storages.journal._storage.JournalOperation
    checks = {
        "Trial._trial_id": isinstance(trial._trial_id, int),
        "FrozenTrial._trial_id": frozen._trial_id == trial._trial_id,
        "Trial._cached_frozen_trial": isinstance(trial._cached_frozen_trial, optuna.trial.FrozenTrial),
        "Study._storage": isinstance(study._storage, optuna.storages.BaseStorage),
        "Study._study_id": study._study_id == summary._study_id,
        "Study._thread_local": hasattr(study._thread_local, "cached_all_trials"),
        "FrozenStudy._study_id": rdb.get_study_id_from_name("private-names") == summary._study_id,
        "_CachedStorage._backend": study._storage._backend is rdb,
        "optuna.study._optimize": logging.getLogger(C.OPTIMIZE_LOGGER) is optuna.study._optimize._logger,
        "optuna.storages._rdb.storage": logging.getLogger(C.RDB_LOGGER) is optuna.storages._rdb.storage._logger,
        "JournalOperation": {
            journal_ops.SET_TRIAL_USER_ATTR.value: "user_attr",
            journal_ops.SET_TRIAL_SYSTEM_ATTR.value: "system_attr",
        }
        == C.JOURNAL_ATTR_OPS,
        "trial_heartbeats": "trial_heartbeats" in C.optuna_table_names(),
        "TPESampler._rng": hasattr(tpe._rng, "rng"),
        "TPESampler._random_sampler": isinstance(tpe._random_sampler, optuna.samplers.RandomSampler),
        "GPSampler._rng": hasattr(gp._rng, "rng"),
        "GPSampler._independent_sampler": isinstance(gp._independent_sampler, optuna.samplers.RandomSampler),
        "RandomSampler._rng": hasattr(optuna.samplers.RandomSampler(0)._rng, "rng"),
    }
    for name, parameters in C.RDB_PRIVATE_CALLS.items():
        checks[f"RDBStorage.{name}"] = _has_parameters(optuna.storages.RDBStorage, name, parameters)
    return checks


def test_every_private_optuna_name_in_use_is_listed_and_still_there(rdb):
    """C.PRIVATE_NAMES lists every private Optuna name the package uses; each is checked here against the
    installed Optuna (a new name without a check fails too). The RDB methods of RDB_PRIVATE_CALLS keep their
    parameters: the outage layer wraps them, rdb.WorkerRDBStorage overrides two (tests/storages/test_rdb.py
    checks Optuna still calls those)."""
    checks = _private_name_checks(rdb)
    assert set(checks) == set(C.PRIVATE_NAMES)
    assert [name for name, ok in checks.items() if not ok] == []
    assert {"_get_stale_trial_ids", "_create_new_trial"} <= set(C.RDB_PRIVATE_CALLS)


def test_the_outage_layer_wraps_the_private_calls_and_keeps_its_state_apart(rdb):
    """The patient RDB storage wraps exactly the public methods and C.RDB_PRIVATE_CALLS, and Optuna's object
    carries no attribute of ours: the outage layer's state is its own Link."""
    from mnist_hpo.storages import _outage

    for name in C.RDB_PRIVATE_CALLS:
        assert name in type(rdb).__dict__, name
    assert not [
        n
        for n in type(rdb).__dict__
        if n.startswith("_") and not n.startswith("__") and n not in C.RDB_PRIVATE_CALLS and n != "_abc_impl"
    ]  # _abc_impl: every subclass of an ABC
    assert not [n for n in vars(rdb) if "mnist" in n]
    link = _outage.link_of(rdb)
    assert link is not None and link.where.startswith("sqlite:///") and link.path is not None and not link.journal


def test_optuna_table_names_match_its_models():
    from optuna.storages._rdb.models import BaseModel

    assert C.optuna_table_names() == set(BaseModel.metadata.tables) | {"alembic_version"}


def test_grid_copy_has_gridsamplers_order():
    space = {"b": [1, 2, 3], "a": ["x", "y"], "c": [0.5, 0.25]}
    for seed in (None, 0, 7, 123):
        ours, theirs = CoverGridSampler(space, seed=seed), optuna.samplers.GridSampler(space, seed=seed)
        assert ours.grid == theirs._all_grids and ours.param_names == theirs._param_names
        assert ours.search_space == theirs._search_space and ours.size == theirs._n_min_trials


def test_grid_points_give_the_same_params_as_gridsampler():
    space = {"b": [1, 2, 3], "a": ["x", "y"]}

    def params(sampler):
        study = optuna.create_study(sampler=sampler)
        study.optimize(lambda t: t.suggest_int("b", 1, 3) + len(t.suggest_categorical("a", ["x", "y"])), n_trials=6)
        return [t.params for t in study.trials]

    assert params(CoverGridSampler(space, seed=5)) == params(optuna.samplers.GridSampler(space, seed=5))


DISTRIBUTIONS = [
    FloatDistribution(1e-5, 1e-1, log=True),
    FloatDistribution(0.0, 0.9),
    FloatDistribution(0.0, 1.0, step=0.1),
    FloatDistribution(0.3, 0.3),
    IntDistribution(2, 64),
    IntDistribution(8, 512, log=True),
    IntDistribution(0, 100, step=5),
    CategoricalDistribution(["Adam", "RMSprop", "SGD"]),
    CategoricalDistribution([16, 32, 64, 128]),
]


def test_seeded_random_draws_match_randomsampler():
    """Our draw equals RandomSampler's own with its generator swapped in (what the sampler used to do)."""
    ours = TrialSeededRandomSampler(11)
    no_retries = types.SimpleNamespace(get_trials=lambda deepcopy=False: [])  # draw index = trial number
    for number in range(40):
        trial = types.SimpleNamespace(number=number)
        for i, dist in enumerate(DISTRIBUTIONS):
            name = f"p{i}"
            reference = optuna.samplers.RandomSampler(0)
            seq = np.random.SeedSequence([11, number, zlib.crc32(name.encode())])
            assert hasattr(reference, "_rng") and hasattr(reference._rng, "rng")
            reference._rng = types.SimpleNamespace(rng=np.random.RandomState(seq.generate_state(1)[0]))
            expected = reference.sample_independent(None, trial, name, dist)
            got = ours.sample_independent(no_retries, trial, name, dist)
            assert got == expected or (math.isnan(got) and math.isnan(expected)), (dist, number)
            assert dist._contains(dist.to_internal_repr(got))


def test_an_interrupted_trial_is_logged_by_optimize_in_one_line_without_traceback():
    class Keep(logging.Handler):
        records: list = []

        def emit(self, record):
            self.records.append(record)

    logger = logging.getLogger(C.OPTIMIZE_LOGGER)
    assert logger is optuna.study._optimize._logger  # where Optuna logs a failed trial
    C.quiet_interrupted_trials()
    C.quiet_interrupted_trials()  # idempotent
    assert sum(isinstance(f, C._NoInterruptTraceback) for f in logger.filters) == 1
    keep = Keep()
    logger.addHandler(keep)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def interrupted(trial):
        trial.suggest_float("x", 0, 1)
        raise KeyboardInterrupt

    def broken(trial):
        raise ZeroDivisionError("a real bug keeps its traceback")

    try:
        study = optuna.create_study()
        with pytest.raises(KeyboardInterrupt):
            study.optimize(interrupted, n_trials=1)
        study.optimize(broken, n_trials=1, catch=(ZeroDivisionError,))
    finally:
        logger.removeHandler(keep)
    failed = [r for r in keep.records if "failed with parameters" in r.getMessage()]
    assert len(failed) == 2, [r.getMessage() for r in keep.records]
    assert "KeyboardInterrupt()" in failed[0].getMessage() and failed[0].exc_info is None
    assert failed[1].exc_info is not None and failed[1].exc_info[0] is ZeroDivisionError


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_queued_trial_of_ones_choosing_is_claimed_once(tmp_path, kind):
    """Population-based training claims queued trials itself (claim_trial), makes new ones without taking a
    queued one (new_trial), and sets the parameters explore chose (set_params)."""
    url = f"sqlite:///{tmp_path / 'c.db'}" if kind == "sqlite" else f"journal:{tmp_path / 'c.log'}"
    study = optuna.create_study(storage=open_storage(url), study_name="claims")
    for n in range(2):
        study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING, user_attrs={"n": n}))
    other = optuna.load_study(study_name="claims", storage=open_storage(url))  # another worker
    second = study.get_trials(deepcopy=False)[1]
    fresh = C.new_trial(study)  # the queue is left alone
    assert fresh.number == 2
    assert [t.state for t in study.get_trials()] == [TrialState.WAITING] * 2 + [TrialState.RUNNING]
    mine = C.claim_trial(study, second)
    assert mine is not None and mine.number == 1 and mine.user_attrs == {"n": 1}
    assert C.claim_trial(other, other.get_trials(deepcopy=False)[1]) is None  # taken: the other worker gets None
    study.tell(mine, 1.0)
    assert C.claim_trial(other, study.get_trials(deepcopy=False)[1]) is None  # finished: None too
    dist = {"lr": FloatDistribution(1e-4, 1e-2, log=True), "opt": CategoricalDistribution(["Adam", "RMSprop"])}
    C.set_params(fresh, {"lr": 1.2e-3, "opt": "RMSprop"}, dist)
    assert fresh.params == {"lr": 1.2e-3, "opt": "RMSprop"}
    stored = other.get_trials(deepcopy=False)[2]
    assert stored.params == {"lr": 1.2e-3, "opt": "RMSprop"} and stored.distributions == dist
