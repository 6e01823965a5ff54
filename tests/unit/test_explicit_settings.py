"""Unit tests read no config file and no environment (tests/unit/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.settings import ConfigError, load_settings
from tests.explicit_settings import API_TOKENS, unit_settings


def test_reading_the_config_in_a_unit_test_fails() -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings()


def test_explicit_settings_ignore_the_environment_and_any_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "other.toml"
    config.write_text('[api]\ntokens = ["from-a-file"]\n[ingest]\nport = 1\n')
    monkeypatch.setenv("PIPELINE_CONFIG", str(config))
    monkeypatch.setenv("PIPELINE_DASHBOARD__TOKEN", "from-the-environment")
    monkeypatch.setenv("PIPELINE_INGEST__MAX_BODY_BYTES", "7")
    s = unit_settings()
    assert [t.get_secret_value() for t in s.api.tokens] == list(API_TOKENS)
    assert s.dashboard.token.get_secret_value() == "unit-dashboard-token"
    assert (s.ingest.port, s.ingest.max_body_bytes) == (8000, 256 * 1024)  # the code's defaults
    # while the process's own settings do read both
    read = load_settings()
    assert (read.ingest.port, read.ingest.max_body_bytes) == (1, 7)
