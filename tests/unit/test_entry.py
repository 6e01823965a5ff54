"""Every process's entry point refuses a bad config the same way (pipeline.entry): exit
status 1 and one line naming the command and the key, before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    ("module", "command"),
    [
        ("ingest.main", "pipeline-ingest"),
        ("streams.main", "pipeline-streams"),
        ("sinks.main", "pipeline-sinks"),
        ("notify.main", "pipeline-notify"),
        ("dashboard.main", "pipeline-dashboard"),
    ],
)
def test_a_bad_config_is_one_line_naming_the_command(
    tmp_path: Path, module: str, command: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[sinks]\nno_such_key = 1\n")
    env = {**os.environ, "PIPELINE_CONFIG": str(path)}
    done = subprocess.run(
        [sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=60
    )
    out = (done.stdout + done.stderr).strip()
    assert done.returncode == 1, out
    assert len(out.splitlines()) == 1 and out.startswith(f"{command}: "), out
    assert "no_such_key" in out, out


def test_tune_gc_freezes_what_start_up_built_and_raises_the_thresholds() -> None:
    """Run in a child: the collector's settings are the process's own."""
    code = (
        "import gc\n"
        "from pipeline.entry import GC_THRESHOLDS, tune_gc\n"
        "before = gc.get_threshold()\n"
        "tune_gc()\n"
        "print(before, gc.get_threshold() == GC_THRESHOLDS, gc.get_freeze_count() > 1000)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["(700,", "10,", "10)", "True", "True"]
