"""Fixtures of the search stage's tests: stored trials of a population-based study, made by hand, and a
TCP proxy in front of PostgreSQL that a storage test can break."""

from __future__ import annotations

import contextlib
import dataclasses
import selectors
import socket
import threading

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
    return cfg.with_overrides(study_name="pbt-test", epochs=3,
                              pbt=dataclasses.replace(cfg.pbt, population=4, interval=1))


@pytest.fixture
def segment():
    """``segment(number, member, generation, state, value=..., **attrs)``: a stored trial of a population-based study.

    ``member=None``: a trial of generation 0 made before it recorded its member; ``error``: it failed with
    one; ``failed_trial``/``retry_history``: it is a retry; ``end``: the sha256 of the checkpoint it ended with.
    """
    def make(number: int, member: int | None, generation: int = 0, state: TrialState = TrialState.COMPLETE, *,
             value: float | None = None, params: dict | None = None, error: str | None = None,
             failed_trial: int | None = None, retry_history: list | None = None, end: str | None = None,
             started: bool = True, discarded: str | None = None) -> FrozenTrial:
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
        return FrozenTrial(number, state, value, None, None, dict(params or {}), {}, user_attrs, system_attrs, {},
                           number)

    return make


PG_TARGET = ("127.0.0.1", 5432)


class BreakableProxy:
    """A TCP proxy on loopback in front of PostgreSQL that the test can break in two ways, and restore.

    ``cut``: every connection closed, new ones closed at once (what a client sees of a restart or
    failover); ``restore`` lets new ones through. ``partition``: nothing forwarded any more, in
    either direction, but every connection stays open and new ones are accepted (a network
    partition, a stalled load balancer: the client's kernel sees its data acknowledged, so no TCP
    timeout or keepalive notices); ``heal`` forwards again what was held back.
    """

    def __init__(self, target=PG_TARGET) -> None:
        self.target, self.up = target, True
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.stopped = False
        self.forwarding = threading.Event()
        self.forwarding.set()
        threading.Thread(target=self._accept, daemon=True).start()

    def route(self, url: str) -> str:
        """``url`` (a database on the target) through this proxy."""
        host, port = self.target
        return url.replace(f"{host}:{port}", f"127.0.0.1:{self.port}")

    def _accept(self) -> None:
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        try:
            while True:
                self.forwarding.wait()
                for key, _ in sel.select(timeout=0.2):
                    if not self.forwarding.is_set():
                        break  # partitioned meanwhile: what has not been read stays where it is
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            sel.close()
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()

    def cut(self) -> None:
        self.up = False
        with self.lock:
            for s in self.conns:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
            self.conns.clear()

    def restore(self) -> None:
        self.up = True

    def partition(self) -> None:
        self.forwarding.clear()

    def heal(self) -> None:
        self.forwarding.set()

    def close(self) -> None:
        self.stopped = True
        self.heal()
        self.cut()
        self.listener.close()


@pytest.fixture
def proxy():
    p = BreakableProxy()
    yield p
    p.close()
