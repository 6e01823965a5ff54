"""Where the tools find the pipeline: the settings, plus the running local stack if any."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.settings import Settings, load_settings


def stack_env(run_dir: Path) -> dict[str, str]:
    path = run_dir / "stack.env"
    if not path.is_file():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k: v for k, v in pairs}


def settings_for(run_dir: Path) -> Settings:
    """Settings from PIPELINE_CONFIG and the environment; a running local stack's addresses
    (``.run/stack.env``) fill in whatever the environment does not set."""
    for key, value in stack_env(run_dir).items():
        os.environ.setdefault(key, value)
    return load_settings()
