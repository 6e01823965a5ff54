"""The ingest server as ``pipeline-ingest`` runs it (granian, our settings), on a free port:
more open keep-alive connections than granian's default limit (1,024) are all answered.

At that default, connections beyond it waited unanswered in the kernel's queue until the
client gave up: 3.8 % of the requests at 1,000 webhooks/s offered (decision 0016)."""

from __future__ import annotations

import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from stack.proc import free_port, port_open

CONNECTIONS = 1300
SERVE = (
    "import sys; from ingest.main import server; from pipeline.settings import IngestSettings; "
    "server(IngestSettings(host='127.0.0.1', port=int(sys.argv[1]))).serve()"
)


@pytest.fixture(scope="module")
def ingest_port() -> Iterator[int]:
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_open(port):
            assert child.poll() is None, "ingest exited at start"
            assert time.monotonic() < deadline, "ingest did not open its port"
            time.sleep(0.1)
        yield port
    finally:
        child.terminate()
        child.wait(15)


def test_more_keep_alive_connections_than_granian_default_are_all_answered(
    ingest_port: int,
) -> None:
    request = b"GET /health HTTP/1.1\r\nHost: ingest\r\n\r\n"
    socks = []
    sel = selectors.DefaultSelector()
    try:
        for _ in range(CONNECTIONS):
            s = socket.create_connection(("127.0.0.1", ingest_port), timeout=5)
            s.sendall(request)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            socks.append(s)
        answered = 0
        # within the header timeout (10 s): past it, granian closes idle connections and so
        # would let the waiting ones in even at its default limit
        deadline = time.monotonic() + 6
        while answered < CONNECTIONS and time.monotonic() < deadline:
            for key, _ in sel.select(0.5):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                if sock.recv(4096).startswith(b"HTTP/1.1 200"):
                    answered += 1
                sel.unregister(sock)  # the connection stays open: keep-alive, idle
        assert answered == CONNECTIONS
    finally:
        for s in socks:
            s.close()
