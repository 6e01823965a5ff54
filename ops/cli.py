"""``pipeline``: the SRE command line. Every command has ``--help``; errors exit non-zero
with one line; long work shows a progress bar with rate and ETA. Commands live in
``cli_kafka`` (replay, republish), ``cli_payments`` (inspect, stuck) and here (dlq, rebuild)."""

from __future__ import annotations

import base64
from typing import Annotated

import msgspec
import orjson
import typer
from rich.table import Table

from ops import cli_kafka, cli_notify, cli_payments  # noqa: F401  (they register commands)
from ops import dlq as dlq_ops
from ops import rebuild as rebuild_ops
from ops.cli_base import app, command, human_ms, out, progress, run, safe, settings
from stack.cli import cli as stack_cli

dlq_app = typer.Typer(help="Inspect dead letters and send chosen ones back.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(stack_cli, name="stack", help="Run the local stack: up, down, status, restart PART.")


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
    s = settings()
    letters = [
        d
        for d in run(dlq_ops.load(s.kafka.bootstrap, s.topics.dlq))
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
                        "provider": dlq_ops.provider(d),
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
        table.add_row(
            safe(d.id),
            safe(d.stage),
            safe(dlq_ops.provider(d)),
            human_ms(d.failed_at_ms),
            safe(d.reason[:90]),
        )
    out().print(table)


@dlq_app.command("show")
@command("dlq show")
def dlq_show(
    dead_letter_id: Annotated[str, typer.Argument(help="id from `pipeline dlq list`")],
) -> None:
    """Show one dead letter whole: reason, source, original headers and body."""
    s = settings()
    letters = run(dlq_ops.load(s.kafka.bootstrap, s.topics.dlq))
    [d] = dlq_ops.choose(letters, [dead_letter_id], None, False)

    doc = msgspec.to_builtins(d)
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
    s = settings()
    letters = run(dlq_ops.load(s.kafka.bootstrap, s.topics.dlq))
    chosen = dlq_ops.choose(letters, ids or [], stage, all_)
    if dry_run:
        for d in chosen:
            typer.echo(f"would redrive {d.id} -> {d.source.topic}")
        return
    n = run(dlq_ops.redrive(s.kafka.bootstrap, chosen))
    typer.echo(f"redrove {n} dead letters")


@app.command()
@command("rebuild")
def rebuild(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable report")] = False,
) -> None:
    """Rebuild all state from webhooks.raw into a scratch database (dropped afterwards);
    report whether it matches live Postgres (transactions) and ClickHouse (events)."""
    s = settings()
    with progress() as bar:
        task = bar.add_task("reading webhooks.raw", total=None)
        report = run(
            rebuild_ops.rebuild(
                s.kafka.bootstrap,
                s.topics.raw,
                s.postgres.dsn.get_secret_value(),
                s.clickhouse.url,
                s.streams.dedup_ttl_s * 1000,
                s.streams.max_state_bytes,
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
        "events_rebuilt": report.events_rebuilt,
        "events_live": report.events_live,
        "events_matched": report.events_matched,
        "differences": report.differences[:50],
        "database": report.database,
        "seconds": report.seconds,
    }
    if as_json:
        typer.echo(orjson.dumps(summary).decode())
    else:
        typer.echo(
            f"read {report.raw_records} raw records ({report.dead_letters} unprocessable); "
            f"rebuilt {report.rebuilt} payments (scratch database {report.database}, "
            f"removed); Postgres has {report.live}, {report.matched} match; "
            f"{report.events_rebuilt} distinct events, ClickHouse has {report.events_live}, "
            f"{report.events_matched} match"
        )
        for line in report.differences[:20]:
            out().print(f"  differs: {safe(line)}")
        typer.echo("MATCH" if report.match else "MISMATCH")
    if not report.match:
        raise typer.Exit(2)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
