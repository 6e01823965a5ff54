"""What ``make up`` and ``make run`` say they did: started, restarted or reused."""

from __future__ import annotations

from stack.cli import describe
from stack.launcher import INFRA, SERVICES, Part, StackInfo, UpReport

T0 = 1_780_000_000.0


def info() -> StackInfo:
    s = StackInfo("/r", "127.0.0.1:1", "postgresql://x", "http://127.0.0.1:2", "http://127.0.0.1:3")
    for i, name in enumerate((*INFRA, *SERVICES)):
        s.parts[name] = Part(name, 100 + i, start_s=1.5, started_at=T0 + i)
    return s


def test_a_new_stack_lists_each_part_with_its_start_time() -> None:
    lines = describe(UpReport(info(), fresh=True, started=[*INFRA, *SERVICES], running=[]))
    assert lines[0] == (
        "started the stack: kafka, postgres, clickhouse, ingest, streams, sinks, notify, dashboard"
    )
    assert len(lines) == 9 and all("ready in   1.50 s" in line for line in lines[1:])


def test_a_reused_stack_prints_no_start_times() -> None:
    lines = describe(UpReport(info(), fresh=False, started=[], running=[*INFRA, *SERVICES]))
    assert len(lines) == 1
    assert lines[0].startswith("reused the running stack: every part was up (since ")
    assert "ready in" not in lines[0]


def test_a_restart_names_the_parts_restarted_and_those_left_running() -> None:
    running = ["kafka", "postgres", "clickhouse", "ingest", "sinks"]
    lines = describe(UpReport(info(), fresh=False, started=["streams"], running=running))
    assert lines[0] == "restarted streams on its old ports (it was down)"
    assert "streams     ready in" in lines[1]
    assert lines[2].startswith("kafka, postgres, clickhouse, ingest, sinks kept running (up since")
