"""The launcher itself: stack.env, a clean stop, and a clear error when a part cannot start."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from pipeline.settings import Settings
from stack import launcher, proc, services
from stack.errors import StartError


def test_up_writes_stack_env_and_down_leaves_no_process(tmp_path: Path, settings: Settings) -> None:
    run = tmp_path / "run"
    info = launcher.up(run, settings, services_too=False)
    env = dict(line.split("=", 1) for line in (run / "stack.env").read_text().splitlines())
    for key in ("INGEST_URL", "POSTGRES_DSN", "CLICKHOUSE_URL", "KAFKA_BOOTSTRAP"):
        assert env[key]
    assert env["KAFKA_BOOTSTRAP"] == info.kafka_bootstrap
    pids = [p.pid for p in info.parts.values()]
    assert all(proc.alive(pid) for pid in pids)
    assert launcher.down(run) == ["clickhouse", "postgres", "kafka"]
    assert not any(proc.alive(pid) for pid in pids)
    assert not (run / "stack.env").exists()


def test_a_busy_port_is_reported_with_the_part_and_its_log(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        log = tmp_path / "clickhouse.log"
        child = proc.spawn(services.clickhouse_command(tmp_path / "ch", port), log)
        with pytest.raises(StartError) as err:
            proc.wait_until(
                "clickhouse",
                lambda: services.http_ok(f"http://127.0.0.1:{port}/ping", "Ok."),
                child,
                log,
                timeout=60,
            )
    assert err.value.part == "clickhouse"
    assert "exited" in err.value.why or "not ready" in err.value.why
    assert "Address already in use" in err.value.log_tail


def test_missing_java_names_kafka(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(StartError) as err:
        services.java()
    assert err.value.part == "kafka" and "java not found" in str(err.value)


def test_a_child_that_dies_at_once_fails_fast(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    child = proc.spawn(
        [sys.executable, "-c", "import sys; print('boom: no jar'); sys.exit(3)"], log
    )
    with pytest.raises(StartError) as err:
        proc.wait_until("kafka", lambda: False, child, log, timeout=30)
    assert "code 3" in err.value.why and "boom: no jar" in err.value.log_tail
