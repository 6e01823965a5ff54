"""A running local stack's ``stack.env`` as the tools read it: pydantic-settings' dotenv
source, between the environment (above) and the config file (below)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.context import settings_for
from pipeline.settings import run_dir
from stack.info import StackInfo


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.toml"
    path.write_text('[kafka]\nbootstrap = "file:9092"\n[clickhouse]\nurl = "http://file:8123"\n')
    monkeypatch.setenv("PIPELINE_CONFIG", str(path))
    return path


def saved_stack(run: Path) -> StackInfo:
    run.mkdir()
    info = StackInfo(
        str(run),
        "127.0.0.1:19092",
        "postgresql://pipeline@127.0.0.1:15432/pipeline",
        "http://127.0.0.1:18123",
        "http://127.0.0.1:18000",
    )
    info.save()  # writes stack.json and stack.env as `make up` does
    return info


def test_the_stack_env_written_by_up_gives_the_stack_addresses(
    tmp_path: Path, config: Path
) -> None:
    info = saved_stack(tmp_path / "run")
    s = settings_for(tmp_path / "run")
    assert s.kafka.bootstrap == info.kafka_bootstrap
    assert s.postgres.dsn.get_secret_value() == info.postgres_dsn
    assert s.clickhouse.url == info.clickhouse_url


def test_the_environment_wins_over_stack_env_and_the_file_counts_without_it(
    tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved_stack(tmp_path / "run")
    monkeypatch.setenv("PIPELINE_KAFKA__BOOTSTRAP", "env:9092")
    s = settings_for(tmp_path / "run")
    assert s.kafka.bootstrap == "env:9092"
    assert s.clickhouse.url == "http://127.0.0.1:18123"  # stack.env over the config file
    without = settings_for(tmp_path / "no-stack-here")
    assert (without.kafka.bootstrap, without.clickhouse.url) == ("env:9092", "http://file:8123")


def test_the_run_folder_is_read_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_dir() == Path(".run")
    monkeypatch.setenv("PIPELINE_RUN_DIR", "/elsewhere/run")
    assert run_dir() == Path("/elsewhere/run")
