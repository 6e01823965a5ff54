"""Where the tools find the pipeline: the settings, plus the running local stack if any."""

from __future__ import annotations

from pathlib import Path

from pipeline.settings import Settings, load_settings


def settings_for(run_dir: Path) -> Settings:
    """Settings from PIPELINE_CONFIG and the environment; a running local stack's addresses
    (``.run/stack.env``) fill in whatever the environment does not set."""
    return load_settings(env_file=run_dir / "stack.env")
