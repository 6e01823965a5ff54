"""Replay the Kafka way: move a stopped consumer group's committed offsets back.

The group's consumers, once started again, read the records from there a second time; every
step of the pipeline is idempotent, so the results stay what they were. Nothing is written
to the topics. The reset is done by Kafka's own ``kafka-consumer-groups --reset-offsets``
(``ops.kafka_tools``), which an SRE can also run by hand (docs/operations.md).

Kafka resets a group's offsets only while the group has no active member: stop the
processes that consume first (on the local stack, the ``sinks`` or ``streams`` part).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ops import kafka_tools
from ops.errors import OpsError
from ops.kafka_tools import GroupState


@dataclass(frozen=True)
class Target:
    """Where to move the offsets: exactly one of these."""

    to_earliest: bool = False
    to_latest: bool = False
    to_offset: int | None = None
    to_time: datetime | None = None
    shift_by: int | None = None

    def args(self) -> list[str]:
        chosen = [
            ["--to-earliest"] if self.to_earliest else [],
            ["--to-latest"] if self.to_latest else [],
            ["--to-offset", str(self.to_offset)] if self.to_offset is not None else [],
            ["--to-datetime", _kafka_time(self.to_time)] if self.to_time is not None else [],
            ["--shift-by", str(self.shift_by)] if self.shift_by is not None else [],
        ]
        given = [c for c in chosen if c]
        if len(given) != 1:
            raise OpsError(
                "say where to replay from, once: --to-earliest, --to-latest, --to-offset N, "
                "--to-time ISO, or --shift-by N"
            )
        return given[0]


@dataclass(frozen=True)
class Move:
    topic: str
    partition: int
    current: int | None
    new: int | None
    end: int | None

    @property
    def records(self) -> int | None:
        """How many records the group will read again up to today's end."""
        if self.new is None or self.end is None:
            return None
        return max(0, (self.end if self.current is None else self.current) - self.new)


@dataclass(frozen=True)
class Plan:
    group: str
    state: GroupState
    moves: list[Move]


def _kafka_time(ts: datetime) -> str:
    """The tool's format, 'YYYY-MM-DDTHH:mm:SS.sss' with a zone (UTC here)."""
    ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def internal(topic: str) -> bool:
    """Faust's own topics (table changelogs, the assignor's): its tables recover from them by
    themselves; a replay re-reads the source topics only."""
    return topic.endswith("-changelog") or "-__assignor-" in topic


def inactive(bootstrap: str, group: str) -> GroupState:
    """The group's state; an ``OpsError`` that says what to do when it is active."""
    st = kafka_tools.state(bootstrap, group)
    if st.active:
        raise OpsError(
            f"consumer group {group!r} is active ({st.state}, {st.members} member(s)): Kafka "
            "resets offsets only while no member consumes; stop its consumers first (local "
            "stack: the sinks part for sink-*, the streams part for the worker), then again"
        )
    return st


def plan(bootstrap: str, group: str, topics: list[str], target: Target) -> Plan:
    """What the reset would do (Kafka's dry run), beside the offsets committed now."""
    args = target.args()
    st = inactive(bootstrap, group)
    return Plan(group, st, _moves(bootstrap, group, topics, args, execute=False))


def execute(bootstrap: str, group: str, topics: list[str], target: Target) -> Plan:
    """Reset the offsets. The group must have no active member."""
    args = target.args()
    st = inactive(bootstrap, group)
    return Plan(group, st, _moves(bootstrap, group, topics, args, execute=True))


def _moves(
    bootstrap: str, group: str, topics: list[str], args: list[str], execute: bool
) -> list[Move]:
    offsets = kafka_tools.committed(bootstrap, group)
    now = {(o.topic, o.partition): o for o in offsets}
    topics = topics or sorted({o.topic for o in offsets if not internal(o.topic)})
    if not topics:
        raise OpsError(f"consumer group {group!r} has no committed offsets")
    new = kafka_tools.reset(bootstrap, group, topics, args, execute)
    if not new:
        raise OpsError(f"consumer group {group!r} has no offsets on {topics or 'any topic'}")
    moves = []
    for o in new:
        was = now.get((o.topic, o.partition))
        current, end = (None, None) if was is None else (was.offset, was.end)
        moves.append(Move(o.topic, o.partition, current, o.offset, end))
    return moves
