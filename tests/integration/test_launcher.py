"""The launcher itself: stack.env, a clean stop, a clear error when a part cannot start; a
running stack reused with only its dead parts restarted on their old ports; one part restarted
on demand; ``make status`` with the real ports, and with no stack."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dotenv import dotenv_values

from pipeline.settings import Settings
from stack import launcher, proc, services
from stack.errors import StartError


def test_up_writes_stack_env_and_down_leaves_no_process(tmp_path: Path, settings: Settings) -> None:
    run = tmp_path / "run"
    info = launcher.up(run, settings, services_too=False)
    env = dotenv_values(run / "stack.env")
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


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        cwd=services.REPO,
        env={**os.environ, **(env or {})},
        timeout=300,
        check=False,
    )


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        capture_output=True,
        text=True,
        cwd=services.REPO,
        timeout=300,
        check=False,
    )


def test_up_restarts_only_the_parts_that_are_down_on_their_old_ports(
    tmp_path: Path, settings: Settings
) -> None:
    run = tmp_path / "run"
    first = launcher.ensure_up(run, settings, services_too=False)
    assert first.fresh and first.started == ["kafka", "postgres", "clickhouse"]
    env = (run / "stack.env").read_text()
    pids = {n: p.pid for n, p in first.info.parts.items()}
    try:
        launcher.stop_part(run, "postgres", signal.SIGKILL)
        again = launcher.ensure_up(run, settings, services_too=False)
        assert not again.fresh
        assert again.started == ["postgres"] and again.running == ["kafka", "clickhouse"]
        parts = again.info.parts
        assert parts["kafka"].pid == pids["kafka"]
        assert parts["clickhouse"].pid == pids["clickhouse"]
        assert parts["postgres"].pid != pids["postgres"] and proc.alive(parts["postgres"].pid)
        assert services.postgres_ready(parts["postgres"].port)
        assert (run / "stack.env").read_text() == env  # every address as it was

        # every part down (a crash, a reboot): all of them back on their old ports
        for name in launcher.INFRA:
            launcher.stop_part(run, name, signal.SIGKILL)
        third = launcher.ensure_up(run, settings, services_too=False)
        assert not third.fresh and third.started == ["kafka", "postgres", "clickhouse"]
        assert (run / "stack.env").read_text() == env
        assert services.http_ok(f"{third.info.clickhouse_url}/ping", "Ok.")

        # a part whose old port another process took meanwhile: said so, nothing else moves
        launcher.stop_part(run, "clickhouse", signal.SIGKILL)
        ch_port = third.info.parts["clickhouse"].port
        with socket.socket() as squatter:
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            bind_once_free(squatter, ch_port)  # the killed server may hold it a moment longer
            squatter.listen()
            with pytest.raises(StartError) as err:
                launcher.ensure_up(run, settings, services_too=False)
        assert f"clickhouse (port {ch_port})" in str(err.value)
        assert "make down && make up" in str(err.value)
        assert (run / "stack.env").read_text() == env
    finally:
        launcher.down(run)


def bind_once_free(sock: socket.socket, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock.bind(("127.0.0.1", port))
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_a_dead_service_comes_back_alone_and_restart_restarts_one_part(
    stack: launcher.StackInfo, settings: Settings
) -> None:
    run = Path(stack.run_dir)
    before = launcher.StackInfo.load(run)
    assert before is not None
    env = (run / "stack.env").read_text()
    launcher.stop_part(run, "sinks", signal.SIGKILL)
    report = launcher.ensure_up(run, settings)
    assert report.started == ["sinks"]
    assert report.running == [
        "kafka", "postgres", "clickhouse", "ingest", "streams", "notify", "dashboard"
    ]  # fmt: skip
    after = report.info.parts
    for name in report.running:
        assert after[name].pid == before.parts[name].pid, name
    assert after["sinks"].pid != before.parts["sinks"].pid
    assert after["sinks"].port2 == before.parts["sinks"].port2
    assert services.http_ok(f"http://127.0.0.1:{after['sinks'].port2}/metrics")
    assert (run / "stack.env").read_text() == env

    # one part on demand, through make: `make restart PART=streams`
    done = make("restart", "PART=streams", f"RUN_DIR={run}")
    assert done.returncode == 0, done.stderr
    assert "restarted streams: ready in" in done.stdout and "on its old ports" in done.stdout
    now = launcher.StackInfo.load(run)
    assert now is not None
    assert now.parts["streams"].pid != after["streams"].pid
    assert now.parts["streams"].port2 == after["streams"].port2
    assert all(now.parts[n].pid == after[n].pid for n in now.parts if n != "streams")
    assert services.http_ok(f"http://127.0.0.1:{now.parts['streams'].port2}/metrics")
    assert (run / "stack.env").read_text() == env

    bad = cli("stack.cli", "restart", "zookeeper", "--run-dir", str(run))
    assert bad.returncode == 1
    assert bad.stderr.strip() == (
        "stack restart: no part 'zookeeper'; one of kafka, postgres, clickhouse, ingest, "
        "streams, sinks, notify, dashboard"
    )


def test_status_shows_the_metrics_ports_and_a_stopped_stack_is_no_error(
    stack: launcher.StackInfo, tmp_path: Path
) -> None:
    done = make("status", f"RUN_DIR={stack.run_dir}")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if " up " in line}
    assert set(rows) == {
        "kafka", "postgres", "clickhouse", "ingest", "streams", "sinks", "notify", "dashboard"
    }  # fmt: skip
    assert "port 0" not in done.stdout and not re.search(r":0(?!\d)", done.stdout)
    for name in ("streams", "sinks", "notify"):
        port = stack.parts[name].port2
        assert port and f"metrics 127.0.0.1:{port}" in rows[name]
        assert services.http_ok(f"http://127.0.0.1:{port}/metrics")
    assert stack.ingest_url.removeprefix("http://") in rows["ingest"]
    assert rows["dashboard"].endswith(f"{stack.dashboard_url.removeprefix('http://')}/dashboard/")
    assert stack.kafka_bootstrap in rows["kafka"]

    nothing = make("status", f"RUN_DIR={tmp_path / 'none'}")
    assert nothing.returncode == 0, nothing.stderr
    assert "the stack is not running (make up starts it)" in nothing.stdout
    assert "Error" not in nothing.stderr
