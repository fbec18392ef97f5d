"""A TCP proxy in front of a real server (PostgreSQL, the S3 server) whose faults a test switches.

Modes:
- ``forward``: a transparent proxy;
- ``down``: the port refuses connections and every open connection is reset (a stopped server);
- ``blackhole``: connections are accepted and nothing is forwarded any more, either way
  (a paused server or a dead network path: only timeouts end the wait);
- ``cut(n)``: the next connection that sends more than ``n`` bytes to the server is reset right
  there (a store that fails half way through a write); later ones are forwarded;
  ``cut_open(n)`` does the same to the connections already open (a pooled connection).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from tests.servers import free_port

_CHUNK = 4096


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.mode = "forward"
        self._cut_after: int | None = None
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._open_budgets: list[dict[str, int | None]] = []  # client->server, one per connection
        self._closed = False
        self.cuts = 0  # connections reset by cut(n)

    # ------------------------------------------------------------------ switching faults

    def forward(self) -> None:
        self.mode = "forward"
        self._listen()

    def down(self) -> None:
        self.mode = "down"
        self._stop_listening()
        self._reset_all()

    def blackhole(self) -> None:
        self.mode = "blackhole"
        self._listen()

    def cut(self, after_bytes: int) -> None:
        with self._lock:
            self._cut_after = after_bytes
        self.mode = "forward"
        self._listen()

    def cut_open(self, after_bytes: int) -> None:
        with self._lock:
            for state in self._open_budgets:
                state["budget"] = after_bytes

    def _disarm(self) -> None:
        with self._lock:
            self.cuts += 1
            self._cut_after = None
            for state in self._open_budgets:
                state["budget"] = None

    def close(self) -> None:
        self._closed = True
        self._stop_listening()
        self._reset_all()

    # ------------------------------------------------------------------ plumbing

    def _listen(self) -> None:
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _stop_listening(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()

    def _reset_all(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, set()
        for conn in connections:
            _reset(conn)

    def _accept(self, listener: socket.socket) -> None:
        while not self._closed:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: the port now refuses connections
            if self.mode == "down":
                _reset(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            server.settimeout(None)
            with self._lock:
                self._connections |= {client, server}
                budget = self._cut_after  # armed until a connection is cut
            state: dict[str, int | None] = {"budget": budget}
            with self._lock:
                self._open_budgets.append(state)
            threading.Thread(
                target=self._pump, args=(client, server, state), daemon=True
            ).start()
            threading.Thread(target=self._pump, args=(server, client, None), daemon=True).start()

    def _pump(
        self, source: socket.socket, target: socket.socket, state: dict[str, int | None] | None
    ) -> None:
        try:
            while True:
                data = source.recv(_CHUNK)
                if not data:
                    break
                while self.mode == "blackhole" and not self._closed:
                    time.sleep(0.02)
                budget = state["budget"] if state is not None else None
                if state is not None and budget is not None:
                    if len(data) > budget:
                        target.sendall(data[:budget])
                        self._disarm()
                        break
                    state["budget"] = budget - len(data)
                target.sendall(data)
        except OSError:
            pass  # one side went away: the other is reset below, as a broken link would be
        if state is not None:
            with self._lock, suppress(ValueError):
                self._open_budgets.remove(state)
        _reset(source)
        _reset(target)


def _reset(conn: socket.socket) -> None:
    with suppress(OSError):
        # SO_LINGER 0: close with a RST, as a crashed server or a cut link does.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with suppress(OSError):
        conn.close()


@contextmanager
def fault_proxy(host: str, port: int) -> Iterator[FaultProxy]:
    proxy = FaultProxy(host, port)
    proxy.forward()
    try:
        yield proxy
    finally:
        proxy.close()
