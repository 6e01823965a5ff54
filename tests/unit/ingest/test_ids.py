"""Raw record and request ids: 32 hex digits, never repeated, not even by a forked worker."""

from __future__ import annotations

import os
import re

from ingest.ids import new_id


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
