"""Slow senders: a client that sends its headers and then trickles (or withholds) the body is
cut off within ``ingest.body_timeout_s``: 408 with a JSON ``detail`` and the connection closed.

Raw sockets against a second ingest started in this process with a 1 s deadline, wired to the
stack's real Kafka; a normal request to it still gets its 202 after the broker's ack.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from pipeline.settings import Settings, load_settings
from stack.launcher import StackInfo
from testing.webhooks import signed_request
from tests.auth import api_token
from tests.chaos.hostile import sample
from tests.chaos.inprocess import serve, stack_settings
from tests.chaos.probes import TALLY, check_answer, remember

DEADLINE_S = 1.0
SLACK_S = 1.5  # scheduling, the 408 itself


@pytest.fixture(scope="module")
def short_deadline(settings: Settings, stack: StackInfo) -> Iterator[str]:
    with serve(stack_settings(settings, stack, body_timeout_s=DEADLINE_S)) as url:
        yield url


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=10)
    sock.settimeout(DEADLINE_S + SLACK_S + 5)
    return sock


def read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"server neither answered nor closed; got {out[:200]!r}") from None
        if not chunk:
            return out
        out += chunk


def assert_cut_off(answer: bytes, elapsed: float) -> None:
    TALLY.case()
    assert elapsed < DEADLINE_S + SLACK_S, f"cut off only after {elapsed:.2f} s"
    assert elapsed >= DEADLINE_S * 0.9, f"cut off too early, after {elapsed:.2f} s"
    if not answer:  # the connection closed without an answer: allowed
        return
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b"content-type: application/json" in head.lower(), head
    assert b"connection: close" in head.lower(), head
    detail = json.loads(body)["detail"]
    assert "not received within 1 s" in detail, detail


def headers_for(path: str, length: int | None, extra: str = "") -> bytes:
    """The merchant API's token is sent too: a request refused at once (401) never waits for
    its body, and the body deadline is what is under test."""
    if path == "/checkouts":
        extra += f"Authorization: Bearer {api_token(load_settings())}\r\n"
    size = f"Content-Length: {length}\r\n" if length is not None else ""
    chunked = "Transfer-Encoding: chunked\r\n" if length is None else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json\r\n"
        f"{size}{chunked}{extra}\r\n"
    ).encode()


@pytest.mark.parametrize("path", ["/webhooks/coinbase", "/webhooks/standard", "/checkouts"])
def test_headers_then_silence_is_cut_off(short_deadline: str, path: str) -> None:
    sock = connect(short_deadline)
    with sock:
        started = time.monotonic()
        sock.sendall(headers_for(path, 1000) + b'{"id": "evt_')  # a few bytes, then nothing
        answer = read_answer(sock)
        assert_cut_off(answer, time.monotonic() - started)


def test_a_trickle_is_cut_off_by_the_total_deadline(short_deadline: str) -> None:
    """One byte every 0.2 s keeps the connection busy but never finishes: the deadline is for
    the whole body, not for the gap between two bytes."""
    sock = connect(short_deadline)
    with sock:
        started = time.monotonic()
        sock.sendall(headers_for("/webhooks/jwt", 5000))
        sock.setblocking(False)
        answer = b""
        while time.monotonic() - started < DEADLINE_S + SLACK_S + 2:
            try:
                sock.send(b" ")
            except OSError:  # the server closed it
                break
            time.sleep(0.2)
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                break
            if not chunk:
                break
            answer += chunk
            if b"\r\n\r\n" in answer and b'"}' in answer:
                break
        assert_cut_off(answer, time.monotonic() - started)


def test_a_chunked_body_that_never_ends_is_cut_off(short_deadline: str) -> None:
    sock = connect(short_deadline)
    with sock:
        started = time.monotonic()
        sock.sendall(headers_for("/webhooks/btcpay", None) + b'5\r\n{"a":\r\n')
        answer = read_answer(sock)
        assert_cut_off(answer, time.monotonic() - started)


def test_a_request_without_a_body_is_not_held(short_deadline: str) -> None:
    """A webhook that announces no body is answered at once (400 empty body), not at the
    deadline."""
    sock = connect(short_deadline)
    with sock:
        started = time.monotonic()
        sock.sendall(headers_for("/webhooks/coinbase", 0, "Connection: close\r\n"))
        answer = read_answer(sock)
        assert time.monotonic() - started < DEADLINE_S / 2
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
        TALLY.case()


def test_normal_requests_still_pass_and_the_service_stays_up(
    short_deadline: str, settings: Settings
) -> None:
    with httpx.Client(base_url=short_deadline, timeout=15) as client:
        for provider in ("coinbase", "standard"):
            ev = sample(provider, f"slow-control-{provider}-{time.time_ns()}")
            body, headers = remember(*signed_request(ev, settings.providers))
            check_answer(client.post(f"/webhooks/{provider}", content=body, headers=headers), {202})
        health = client.get("/health")
        assert health.status_code == 200 and health.json() == {"status": "alive"}


def test_the_running_service_cuts_a_silent_body_off_after_ten_seconds(stack: StackInfo) -> None:
    """The default deadline as the stack's own ingest applies it (the shipped config keeps
    10 s): headers and a few bytes, then nothing."""
    sock = connect(stack.ingest_url)
    sock.settimeout(25)
    with sock:
        started = time.monotonic()
        sock.sendall(headers_for("/webhooks/coinbase", 1000) + b'{"id": "evt_')
        answer = read_answer(sock)
        elapsed = time.monotonic() - started
    TALLY.case()
    assert 9.0 <= elapsed < 10.0 + SLACK_S + 1, f"cut off after {elapsed:.2f} s"
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b"request body not received within 10 s" in answer, answer[:300]
