"""Raw record and request ids: 32 hex digits, never repeated, not even by a forked worker."""

from __future__ import annotations

import os
import re

import structlog

from ingest.ids import new_id, request_id


def test_ids_are_32_hex_digits_and_unique() -> None:
    ids = [new_id() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_child_draws_its_own_prefix() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then out without running the parent's cleanup
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    mine = new_id()
    assert len(child) == 32 and child[:16] != mine[:16]


def test_a_safe_request_id_is_kept_and_bound_to_the_logs() -> None:
    assert request_id("order-7.retry_2") == "order-7.retry_2"
    assert structlog.contextvars.get_contextvars() == {"request_id": "order-7.retry_2"}


def test_an_unsafe_or_missing_request_id_is_replaced_by_a_new_one() -> None:
    for given in ("", "has space", "line\nbreak", "x" * 65, "ü", "a/b"):
        made = request_id(given)
        assert re.fullmatch(r"[0-9a-f]{32}", made), given
        assert structlog.contextvars.get_contextvars() == {"request_id": made}
