"""Unit tests need nothing running and read nothing from outside: no shipped config and no
``PIPELINE_*`` variables of the environment. They build their settings explicitly
(tests/explicit_settings.py); a test that reads the config anyway fails with "config file not
found". Tests whose subject is a shipped file (test_compose.py, test_deploy_config.py) name
that file themselves."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from pipeline.settings import Settings
from tests.explicit_settings import unit_settings


@pytest.fixture(autouse=True)
def _no_config_and_no_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in [k for k in os.environ if k.startswith("PIPELINE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIPELINE_CONFIG", "/nonexistent/unit-tests-read-no-config.toml")
    yield


@pytest.fixture
def settings() -> Settings:
    return unit_settings()
