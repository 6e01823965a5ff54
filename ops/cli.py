"""``pipeline``: the SRE command line. Every command has ``--help``; errors exit non-zero
with one line; long work shows a progress bar with rate and ETA."""

from __future__ import annotations

import asyncio
import functools
import os
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ops import dlq as dlq_ops
from ops import inspect as inspect_ops
from ops import rebuild as rebuild_ops
from ops import replay as replay_ops
from ops.context import settings_for
from ops.errors import OpsError
from pipeline.settings import ConfigError, Settings
from stack.cli import cli as stack_cli
from stack.errors import StartError

T = TypeVar("T")
app = typer.Typer(
    help="SRE tools for the checkout pipeline: replay, dead letters, rebuild, "
    "inspect, and the local stack.",
    no_args_is_help=True,
    add_completion=False,
)
dlq_app = typer.Typer(help="Inspect dead letters and send chosen ones back.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(stack_cli, name="stack", help="Run the local stack: up, down, status, restart PART.")
console = Console(stderr=True)
RUN_DIR = Path(os.environ.get("PIPELINE_RUN_DIR", ".run"))


def _settings() -> Settings:
    return settings_for(RUN_DIR)


def command(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """One line on stderr and exit 1 for every expected failure."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except (OpsError, ConfigError, StartError) as exc:
                typer.echo(f"pipeline {name}: {str(exc).splitlines()[0]}", err=True)
                raise typer.Exit(1) from None

        return run

    return wrap


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.speed} rec/s"),
        TimeRemainingColumn(),
        console=console,
        disable=not sys.stderr.isatty(),
    )


def _ms(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        raise OpsError(f"not an ISO 8601 time: {text!r}") from None


@app.command()
@command("replay")
def replay(
    topic: Annotated[str, typer.Argument(help="topic to re-feed, e.g. webhooks.raw")],
    partition: Annotated[
        list[int] | None, typer.Option("--partition", "-p", help="partition (repeat); default all")
    ] = None,
    from_offset: Annotated[int | None, typer.Option(help="first offset (inclusive)")] = None,
    to_offset: Annotated[int | None, typer.Option(help="last offset (exclusive)")] = None,
    from_time: Annotated[str | None, typer.Option(help="first record time, ISO 8601")] = None,
    to_time: Annotated[str | None, typer.Option(help="end time (exclusive), ISO 8601")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would be replayed")] = False,
) -> None:
    """Re-feed a range of a topic into the pipeline. Results stay unchanged: it is idempotent."""
    settings = _settings()
    sel = replay_ops.Selection(
        topic, partition, from_offset, to_offset, _ms(from_time), _ms(to_time)
    )
    spans = _run(replay_ops.plan(settings.kafka.bootstrap, sel))
    table = Table(
        "partition", "from offset", "to offset (excl.)", "records", title=f"replay {topic}"
    )
    for s in spans:
        table.add_row(str(s.partition), str(s.start), str(s.end), str(s.count))
    Console().print(table)
    total = sum(s.count for s in spans)
    if dry_run:
        typer.echo(f"dry run: would replay {total} records")
        return
    with _progress() as bar:
        task = bar.add_task("replaying", total=total)
        sent = _run(
            replay_ops.replay(
                settings.kafka.bootstrap, topic, spans, lambda n: bar.advance(task, n)
            )
        )
    typer.echo(f"replayed {sent} records into {topic}")


@dlq_app.command("list")
@command("dlq list")
def dlq_list(
    stage: Annotated[
        str | None, typer.Option(help="only this stage: ingest, normalize, apply")
    ] = None,
    limit: Annotated[int, typer.Option(help="newest N")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """List dead letters with their stage and reason, newest last."""
    settings = _settings()
    letters = [
        d
        for d in _run(dlq_ops.load(settings.kafka.bootstrap, settings.topics.dlq))
        if stage is None or d.stage == stage
    ][-limit:]
    if as_json:
        typer.echo(
            orjson.dumps(
                [
                    {
                        "id": d.id,
                        "stage": d.stage,
                        "reason": d.reason,
                        "provider": d.provider,
                        "failed_at_ms": d.failed_at_ms,
                    }
                    for d in letters
                ]
            ).decode()
        )
        return
    table = Table(
        "id", "stage", "provider", "failed at", "reason", title=f"{len(letters)} dead letters"
    )
    for d in letters:
        when = datetime.fromtimestamp(d.failed_at_ms / 1000).isoformat(timespec="seconds")
        table.add_row(d.id, d.stage, d.provider, when, d.reason[:90])
    Console().print(table)


@dlq_app.command("show")
@command("dlq show")
def dlq_show(
    dead_letter_id: Annotated[str, typer.Argument(help="id from `pipeline dlq list`")],
) -> None:
    """Show one dead letter whole: reason, source, original headers and body."""
    settings = _settings()
    letters = _run(dlq_ops.load(settings.kafka.bootstrap, settings.topics.dlq))
    [d] = dlq_ops.choose(letters, [dead_letter_id], None, False)
    import base64

    doc = dict(d.doc)
    doc["headers"] = {k: base64.b64decode(v).decode(errors="replace") for k, v in doc["headers"]}
    if doc.get("value"):
        doc["value"] = base64.b64decode(doc["value"]).decode(errors="replace")
    typer.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())


@dlq_app.command("redrive")
@command("dlq redrive")
def dlq_redrive(
    ids: Annotated[list[str] | None, typer.Argument(help="dead letter ids to send back")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every dead letter (of --stage)")] = False,
    stage: Annotated[str | None, typer.Option(help="with --all: only this stage")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list what would be sent back")
    ] = False,
) -> None:
    """Send chosen dead letters back through the pipeline (after their cause is fixed)."""
    settings = _settings()
    letters = _run(dlq_ops.load(settings.kafka.bootstrap, settings.topics.dlq))
    chosen = dlq_ops.choose(letters, ids or [], stage, all_)
    if dry_run:
        for d in chosen:
            typer.echo(f"would redrive {d.id} -> {d.source_topic}")
        return
    n = _run(dlq_ops.redrive(settings.kafka.bootstrap, chosen))
    typer.echo(f"redrove {n} dead letters")


@app.command()
@command("rebuild")
def rebuild(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable report")] = False,
) -> None:
    """Rebuild all state from webhooks.raw into a fresh database; report if it matches live."""
    settings = _settings()
    with _progress() as bar:
        task = bar.add_task("reading webhooks.raw", total=None)
        report = _run(
            rebuild_ops.rebuild(
                settings.kafka.bootstrap,
                settings.topics.raw,
                settings.postgres.dsn.get_secret_value(),
                settings.streams.dedup_ttl_s * 1000,
                lambda n: bar.advance(task, n),
            )
        )
    summary = {
        "match": report.match,
        "raw_records": report.raw_records,
        "dead_letters": report.dead_letters,
        "rebuilt": report.rebuilt,
        "live": report.live,
        "matched": report.matched,
        "differences": report.differences[:50],
        "database": report.database,
    }
    if as_json:
        typer.echo(orjson.dumps(summary).decode())
    else:
        typer.echo(
            f"read {report.raw_records} raw records ({report.dead_letters} unprocessable); "
            f"rebuilt {report.rebuilt} payments into database {report.database}; "
            f"live has {report.live}; {report.matched} match"
        )
        for line in report.differences[:20]:
            typer.echo(f"  differs: {line}")
        typer.echo("MATCH" if report.match else "MISMATCH")
    if not report.match:
        raise typer.Exit(2)


@app.command()
@command("inspect")
def inspect(
    provider: Annotated[str, typer.Argument(help="coinbase, btcpay, nowpayments, ...")],
    external_id: Annotated[str, typer.Argument(help="the provider's payment id")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """One payment's journey: raw webhooks, events, transitions, Postgres and ClickHouse rows."""
    j = _run(inspect_ops.journey(_settings(), provider, external_id))
    if as_json:
        typer.echo(orjson.dumps(j).decode())
        return
    out = Console()
    out.rule(f"{provider} / {external_id}")
    out.print(f"[bold]raw webhooks in Kafka[/]: {len(j['raw_webhooks'])}")
    for r in j["raw_webhooks"]:
        out.print(
            f"  {r['headers'].get('id')} partition {r['partition']} offset {r['offset']} "
            f"received {r['headers'].get('received-at-ms')}"
        )
    out.print(f"[bold]normalized events[/]: {len(j['events'])}")
    for e in j["events"]:
        if "error" in e:
            out.print(f"  offset {e['offset']}: unreadable, {escape(e['error'])}")
        elif e.get("type") == "checkout":
            out.print(f"  checkout {e['amount']} {e['currency']} order {e['order_id']}")
        else:
            out.print(f"  {e['event_id']} {e['status']} at {e['occurred_at']}")
    out.print(f"[bold]transitions[/]: {len(j['transitions'])}")
    for t in j["transitions"]:
        mark = "applied" if t["applied"] else f"REFUSED ({t['note']})"
        out.print(
            f"  v{t['version']} {t['from_status']} -> {t['to_status']} by {t['event_id']} "
            f"[{t.get('outcome', '')}] {mark}"
        )
    row = j["postgres"]["transaction"]
    out.print(
        "[bold]Postgres[/]: "
        + (
            f"{row['status']} v{row['version']} {row['amount']} "
            f"{row['currency']} updated {row['updated_at']}"
            if row
            else "no row"
        )
    )
    out.print(f"  history rows: {len(j['postgres']['history'])}")
    ch = j["clickhouse"]
    out.print(
        f"[bold]ClickHouse[/]: {len(ch['payment_events'])} payment_events, "
        f"{len(ch['ingest_log'])} deliveries in ingest_log"
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
