"""Apache Kafka's own consumer-group tool (``kafka-consumer-groups``), run from its jars.

The jars of ``org.apache.kafka:kafka-tools`` of the broker's version and their runtime
dependencies come from Maven Central through ``deploy/kafka/tools/pom.xml`` (``make setup``
fetches them; the first use does too if they are missing). The tool's main class is
``org.apache.kafka.tools.consumer.group.ConsumerGroupCommand``: the same program that
``bin/kafka-consumer-groups.sh`` of a Kafka release runs, so what it does here is what an
SRE's runbook does against a production cluster.

``python -m ops.kafka_tools fetch`` fetches the jars; ``python -m ops.kafka_tools ARGS...``
runs the tool with ``--bootstrap-server`` of the running local stack.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ops.errors import OpsError
from stack.services import copy_maven_jars

REPO = Path(__file__).resolve().parent.parent
TOOLS_POM = REPO / "deploy" / "kafka" / "tools" / "pom.xml"
TOOLS_LIBS = REPO / ".cache" / "kafka-tools-libs"
MAIN_CLASS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
#: group states in which offsets may be reset: no member is consuming
INACTIVE = {"Empty", "Dead"}


def version(pom: Path = TOOLS_POM) -> str:
    """The Kafka version a pom names (``<kafka.version>``)."""
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    if found is None:
        raise OpsError(f"{pom} names no <kafka.version>")
    return found.group(1).strip()


def ensure_jars() -> Path:
    """The tool's jars of the pom's version, fetched with Maven once (cached in ~/.m2 and
    .cache/); fetched again when the pom names another version."""
    if (TOOLS_LIBS / f"kafka-tools-{version()}.jar").is_file():
        return TOOLS_LIBS
    shutil.rmtree(TOOLS_LIBS, ignore_errors=True)
    if shutil.which("mvn") is None:
        raise OpsError("mvn not found: run `make setup` (it installs Maven)")
    failed = copy_maven_jars(TOOLS_POM, TOOLS_LIBS)
    if failed is not None:
        last = failed.strip().splitlines()[-1:] or ["no output"]
        raise OpsError(f"could not fetch the kafka-tools jars with Maven: {last[0][:200]}")
    return TOOLS_LIBS


def run(bootstrap: str, *args: str, timeout: float = 120) -> str:
    """Run the tool; its standard output. The tool exits 0 even on errors and prints them
    as ``Error: ...``: those become an ``OpsError`` with the tool's own words."""
    java = shutil.which("java")
    if java is None:
        raise OpsError("java not found: run `make setup` (it installs Java 17)")
    cmd = [
        java,
        "-Xmx256m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",  # a short-lived tool: start fast rather than run fast
        "-cp",
        f"{ensure_jars()}/*",
        MAIN_CLASS,
        "--bootstrap-server",
        bootstrap,
        *args,
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise OpsError(f"kafka-consumer-groups did not answer within {timeout:.0f} s") from None
    for line in (done.stdout + "\n" + done.stderr).splitlines():
        if line.startswith("Error:"):
            reason = line.removeprefix("Error:").strip().rsplit("Exception: ", 1)[-1]
            raise OpsError(f"kafka-consumer-groups: {reason}")
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise OpsError(f"kafka-consumer-groups exited {done.returncode}: {tail[0][:200]}")
    return done.stdout


def table(text: str) -> list[dict[str, str]]:
    """The tool's column-aligned tables as rows keyed by their header (cells are cut at the
    header's column starts: a cell may hold a space, e.g. ``127.0.0.1:9092  (1)``)."""
    rows: list[dict[str, str]] = []
    columns: list[tuple[str, int]] = []
    for line in text.splitlines():
        if not line.strip():
            columns = []
            continue
        if line.startswith("GROUP "):
            columns = [(m.group(), m.start()) for m in re.finditer(r"\S+(?: \S+)*", line)]
        elif columns:
            ends = [start for _, start in columns[1:]] + [len(line)]
            rows.append(
                {
                    name: line[start:end].strip()
                    for (name, start), end in zip(columns, ends, strict=True)
                }
            )
    return rows


@dataclass(frozen=True)
class GroupState:
    group: str
    state: str
    members: int

    @property
    def active(self) -> bool:
        return self.state not in INACTIVE


@dataclass(frozen=True, order=True)
class Offset:
    topic: str
    partition: int
    offset: int | None  # None: nothing committed
    end: int | None = None


def state(bootstrap: str, group: str) -> GroupState:
    out = run(bootstrap, "--describe", "--group", group, "--state")
    for row in table(out):
        if row.get("GROUP") == group:
            return GroupState(group, row.get("STATE", "?"), int(row.get("#MEMBERS", "0")))
    raise OpsError(f"consumer group {group!r}: no state in the tool's answer")


def committed(bootstrap: str, group: str) -> list[Offset]:
    """The group's committed offsets and each partition's end offset."""
    out = run(bootstrap, "--describe", "--group", group, "--offsets")
    return sorted(
        Offset(
            r["TOPIC"], int(r["PARTITION"]), _int(r["CURRENT-OFFSET"]), _int(r["LOG-END-OFFSET"])
        )
        for r in table(out)
        if "TOPIC" in r
    )


def reset(
    bootstrap: str, group: str, topics: list[str], spec: list[str], execute: bool
) -> list[Offset]:
    """``--reset-offsets`` with ``spec`` (``--to-earliest``, ``--to-datetime T``, ...) for
    ``topics`` (each ``topic`` or ``topic:0,1``; none: every topic the group has offsets of);
    with ``execute`` False a dry run. The new offsets, as the tool reports them."""
    scope = [a for t in topics for a in ("--topic", t)] or ["--all-topics"]
    mode = "--execute" if execute else "--dry-run"
    out = run(bootstrap, "--reset-offsets", "--group", group, *scope, *spec, mode)
    return sorted(
        Offset(r["TOPIC"], int(r["PARTITION"]), _int(r["NEW-OFFSET"]))
        for r in table(out)
        if "NEW-OFFSET" in r
    )


def _int(text: str) -> int | None:
    return None if text == "-" else int(text)


def main() -> None:
    """``fetch``: only fetch the jars; anything else: arguments for the tool."""
    args = sys.argv[1:]
    try:
        if args == ["fetch"]:
            print(f"kafka-tools jars in {ensure_jars()}")
            return
        from ops.context import settings_for
        from pipeline.settings import run_dir

        print(run(settings_for(run_dir()).kafka.bootstrap, *args), end="")
    except OpsError as exc:
        sys.exit(f"kafka-tools: {exc}")


if __name__ == "__main__":
    main()
