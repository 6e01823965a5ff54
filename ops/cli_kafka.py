"""``pipeline replay`` (a consumer group's offsets moved back, Kafka's way) and
``pipeline republish`` (copies of records appended to a topic)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ops import replay as replay_ops
from ops import republish as republish_ops
from ops.cli_base import app, command, ms, out, parse_time, progress, run, safe, settings


@app.command()
@command("replay")
def replay(
    group: Annotated[str, typer.Argument(help="consumer group, e.g. sink-postgres")],
    topic: Annotated[
        list[str] | None,
        typer.Option(
            "--topic",
            "-t",
            help="topic or topic:0,1 (repeat); default every topic the group has offsets on "
            "(Faust's changelogs aside)",
        ),
    ] = None,
    to_earliest: Annotated[bool, typer.Option("--to-earliest")] = False,
    to_latest: Annotated[bool, typer.Option("--to-latest", help="skip to the end")] = False,
    to_offset: Annotated[int | None, typer.Option(help="this offset in each partition")] = None,
    to_time: Annotated[
        str | None, typer.Option(help="the first record at or after this ISO 8601 time")
    ] = None,
    shift_by: Annotated[int | None, typer.Option(help="move by N (negative: back)")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show the offsets now and after; change nothing")
    ] = False,
) -> None:
    """Replay: move a STOPPED consumer group's offsets back (Kafka's kafka-consumer-groups
    --reset-offsets); started again, its consumers re-read from there. Results stay unchanged:
    every step is idempotent. Kafka refuses while the group has an active member."""
    bootstrap = settings().kafka.bootstrap
    target = replay_ops.Target(to_earliest, to_latest, to_offset, parse_time(to_time), shift_by)
    topics = topic or []
    if dry_run:
        plan = replay_ops.plan(bootstrap, group, topics, target)
    else:
        plan = replay_ops.execute(bootstrap, group, topics, target)
    table = Table(
        "topic",
        "partition",
        "committed now",
        "new offset",
        "records to re-read",
        title=f"replay {safe(group)} ({safe(plan.state.state)})",
    )
    for m in plan.moves:
        table.add_row(
            safe(m.topic),
            str(m.partition),
            "-" if m.current is None else str(m.current),
            "-" if m.new is None else str(m.new),
            "-" if m.records is None else str(m.records),
        )
    out().print(table)
    total = sum(m.records or 0 for m in plan.moves)
    if dry_run:
        typer.echo(f"dry run: would reset {len(plan.moves)} partitions, {total} records again")
    else:
        typer.echo(
            f"reset {len(plan.moves)} partitions of {group}: start its consumers again and "
            f"they re-read {total} records"
        )


@app.command()
@command("republish")
def republish(
    topic: Annotated[str, typer.Argument(help="topic whose records to copy, e.g. webhooks.raw")],
    partition: Annotated[
        list[int] | None, typer.Option("--partition", "-p", help="partition (repeat); default all")
    ] = None,
    from_offset: Annotated[int | None, typer.Option(help="first offset (inclusive)")] = None,
    to_offset: Annotated[int | None, typer.Option(help="last offset (exclusive)")] = None,
    from_time: Annotated[str | None, typer.Option(help="first record time, ISO 8601")] = None,
    to_time: Annotated[str | None, typer.Option(help="end time (exclusive), ISO 8601")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would be copied")] = False,
) -> None:
    """Append copies of a range of a topic's records to the same topic (same key, value,
    headers). Results stay unchanged, but the topic grows and `inspect` shows the copies as
    deliveries. Prefer `replay` (an offset reset) when the consumers can be stopped."""
    s = settings()
    sel = republish_ops.Selection(
        topic, partition, from_offset, to_offset, ms(from_time), ms(to_time)
    )
    spans = run(republish_ops.plan(s.kafka.bootstrap, sel))
    table = Table(
        "partition", "from offset", "to offset (excl.)", "records", title=f"republish {safe(topic)}"
    )
    for sp in spans:
        table.add_row(str(sp.partition), str(sp.start), str(sp.end), str(sp.count))
    out().print(table)
    total = sum(sp.count for sp in spans)
    if dry_run:
        typer.echo(f"dry run: would republish {total} records")
        return
    with progress() as bar:
        task = bar.add_task("republishing", total=total)
        sent = run(
            republish_ops.republish(s.kafka.bootstrap, topic, spans, lambda n: bar.advance(task, n))
        )
    typer.echo(f"republished {sent} records into {topic}")
