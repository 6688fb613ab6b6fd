"""Fixtures of the storage stage's tests: a TCP proxy in front of PostgreSQL that a test can break."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading

import pytest

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
