"""CPU and memory of a process tree, as the benchmarks and ``make status`` count them."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from stack import proc

BURN = "import time\nend = time.time() + 30\nwhile time.time() < end: pass"
#: a child that holds 64 MiB and starts a grandchild that burns CPU for a while
PARENT = f"""
import subprocess, sys, time
held = b"x" * (64 * 2**20)
kid = subprocess.Popen([sys.executable, "-c", {BURN!r}])
print(kid.pid, flush=True)
time.sleep(30)
"""


def test_a_process_tree_counts_its_children_cpu_and_memory() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        kid = int(parent.stdout.readline())
        time.sleep(1.0)
        tree, own = proc.cpu_seconds(parent.pid), proc.cpu_seconds(kid)
        assert own > 0.5  # the grandchild burned most of a second
        assert tree >= own  # and the parent's tree includes it
        assert proc.rss_mb(parent.pid) > 64  # the parent's 64 MiB, plus two interpreters
        assert proc.rss_mb(parent.pid) > proc.rss_mb(kid)
        assert proc.alive(parent.pid) and proc.alive(kid)
    finally:
        for p in [*psutil.Process(parent.pid).children(recursive=True)]:
            p.kill()
        parent.kill()
        parent.wait()


def test_an_exited_unreaped_child_is_not_alive_and_a_gone_one_counts_nothing() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while proc.alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not proc.alive(child.pid)  # a zombie until reaped
    child.wait()
    assert not proc.alive(child.pid)
    assert proc.cpu_seconds(child.pid) == 0.0 and proc.rss_mb(child.pid) == 0.0


def test_the_largest_process_of_a_tree_is_one_process_not_the_sum() -> None:
    parent = psutil.Process()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.5)
        own = parent.memory_info().rss / 2**20
        assert proc.largest_rss_mb(parent.pid) == pytest.approx(own, rel=0.2)
        assert proc.rss_mb(parent.pid) > proc.largest_rss_mb(parent.pid)
    finally:
        child.kill()
        child.wait()
