"""Fixtures of the search stage's tests: stored trials of a population-based study, made by hand."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
import torch
from optuna.trial import FrozenTrial, TrialState

from mnist_hpo.config import load_study_config

from ..conftest import STUDIES, tiny_pbt_file


@pytest.fixture(scope="module")
def tiny_population(tmp_path_factory, mnist):
    """A finished study of TINY_PBT on SQLite, run in this process: (storage folder, URL, config, data)."""
    from mnist_hpo.hpo.run import run_study

    root = tmp_path_factory.mktemp("pbt")
    cfg = load_study_config(tiny_pbt_file(root))
    url = f"sqlite:///{root / 'pbt.db'}"
    data = mnist.subset(200, 50)
    with pytest.MonkeyPatch.context() as mp, one_thread():
        mp.setenv("MNIST_HPO_STORAGE_DIR", str(root / "storage"))
        run_study(cfg, storage_url=url, data=data, progress=False)
    return root / "storage", url, cfg, data


@contextlib.contextmanager
def one_thread():
    """Train with one torch thread (recorded with each trial, so reruns use it too): tiny models gain nothing
    from two, and lose much on a machine that is busy with other work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def pbt_cfg():
    """studies/ae-pbt.toml as 4 members x 3 segments of 1 epoch."""
    cfg = load_study_config(STUDIES / "ae-pbt.toml")
    return cfg.with_overrides(
        study_name="pbt-test", epochs=3, pbt=dataclasses.replace(cfg.pbt, population=4, interval=1)
    )


@pytest.fixture
def segment():
    """``segment(number, member, generation, state, value=..., **attrs)``: a stored trial of a population-based study.

    ``member=None``: a trial of generation 0 made before it recorded its member; ``error``: it failed with
    one; ``failed_trial``/``retry_history``: it is a retry; ``end``: the sha256 of the checkpoint it ended with.
    """

    def make(
        number: int,
        member: int | None,
        generation: int = 0,
        state: TrialState = TrialState.COMPLETE,
        *,
        value: float | None = None,
        params: dict | None = None,
        error: str | None = None,
        failed_trial: int | None = None,
        retry_history: list | None = None,
        end: str | None = None,
        started: bool = True,
        discarded: str | None = None,
    ) -> FrozenTrial:
        user_attrs: dict = {}
        if member is not None:
            user_attrs["pbt"] = {"member": member, "generation": generation}
            if started:
                user_attrs["pbt"].update(epochs=[generation, generation + 1], parent=None, start=None)
        if error:
            user_attrs["error"] = error
        if discarded:
            user_attrs["pbt_discarded"] = discarded
        if end or state == TrialState.COMPLETE:
            user_attrs["pbt_end"] = {"artifact": f"a{number}", "sha256": end or f"{number:064x}"}
        system_attrs = {}
        if failed_trial is not None:
            system_attrs = {"failed_trial": failed_trial, "retry_history": retry_history or [failed_trial]}
        if value is None and state == TrialState.COMPLETE:
            value = 1.0 + number
        return FrozenTrial(
            number, state, value, None, None, dict(params or {}), {}, user_attrs, system_attrs, {}, number
        )

    return make
