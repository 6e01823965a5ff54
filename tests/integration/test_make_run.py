"""``make run`` (stack/demo.py) on the real stack: it reuses a running stack and says so, waits
for the sinks' committed offsets (no sleep) and then finds everything in Postgres and
ClickHouse at once; when a sink cannot drain, it fails with one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from stack import launcher, services


def demo(stack: launcher.StackInfo, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stack.demo"],
        capture_output=True,
        text=True,
        cwd=services.REPO,
        env={**os.environ, "PIPELINE_RUN_DIR": stack.run_dir, "DEMO_PAYMENTS": "60", **env},
        timeout=300,
        check=False,
    )


def test_run_reuses_the_stack_and_everything_landed_once_drained(
    stack: launcher.StackInfo,
) -> None:
    done = demo(stack)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "reused the running stack: every part was up (since " in out
    assert "ready in" not in out  # no start times of a start this run did not do
    assert "Drained " in out and "committed up to the end offsets of their topics" in out
    assert "every webhook landed: 60 payments in their expected status in Postgres" in out
    assert done.stderr == ""


def test_run_fails_with_one_line_when_a_sink_cannot_drain(stack: launcher.StackInfo) -> None:
    now = launcher.StackInfo.load(Path(stack.run_dir))  # another test may have restarted it
    assert now is not None
    sinks = now.parts["sinks"].pid
    os.killpg(sinks, signal.SIGSTOP)  # alive, so reused, but it takes in nothing
    try:
        done = demo(stack, DEMO_DRAIN_TIMEOUT_S="6")
    finally:
        os.killpg(sinks, signal.SIGCONT)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("run: the pipeline did not take in the burst: not drained after 6 s")
    assert "sink-postgres payments.state[" in lines[0]
    assert "every webhook landed" not in done.stdout
