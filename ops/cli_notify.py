"""``pipeline notify``: merchant notifications given up (dead letters), and their redrive."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich.table import Table

from ops import notify_dlq
from ops.cli_base import app, command, human_ms, out, run, safe, settings
from ops.errors import OpsError

notify_app = typer.Typer(
    help="Merchant notifications given up: list them, send chosen ones again.",
    no_args_is_help=True,
)
app.add_typer(notify_app, name="notify")


@notify_app.command("list")
@command("notify list")
def notify_list(
    limit: Annotated[int, typer.Option(help="newest N")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """List notifications given up, with their endpoint and reason, newest last."""
    s = settings()
    letters = run(notify_dlq.load(s.kafka.bootstrap, s.notify.dlq_topic))[-limit:]
    rows = [(d, notify_dlq.delivery(d)) for d in letters]
    if as_json:
        docs = [
            {"webhook_id": d.id, "reason": d.reason, "failed_at_ms": d.failed_at_ms, **x}
            for d, x in rows
        ]
        typer.echo(orjson.dumps(docs).decode())
        return
    table = Table(
        "webhook-id", "endpoint", "payment", "version", "status", "failed at", "reason",
        title=f"{len(rows)} notifications given up",
    )  # fmt: skip
    for d, x in rows:
        table.add_row(
            safe(d.id), safe(x["endpoint"]), safe(f"{x['provider']}:{x['external_id']}"),
            str(x["version"]), safe(x["status"]), human_ms(d.failed_at_ms), safe(d.reason[:80]),
        )  # fmt: skip
    out().print(table)


@notify_app.command("redrive")
@command("notify redrive")
def notify_redrive(
    ids: Annotated[list[str] | None, typer.Argument(help="webhook-ids to send again")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every notification given up")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="even if a newer version was delivered since")
    ] = False,
) -> None:
    """Send chosen notifications again (after the endpoint is fixed): same id and body."""
    s = settings()
    letters = run(notify_dlq.load(s.kafka.bootstrap, s.notify.dlq_topic))
    if not ids and not all_:
        raise OpsError("name webhook-ids, or pass --all")
    by_id = {d.id: d for d in letters}
    if missing := [i for i in ids or [] if i not in by_id]:
        raise OpsError(f"no notification given up with id {missing[0]!r} (pipeline notify list)")
    chosen = [by_id[i] for i in ids] if ids else letters
    done = run(notify_dlq.redrive(s.postgres.dsn.get_secret_value(), chosen, force))
    for i in done.skipped:
        typer.echo(f"skipped {i}: a newer version was delivered since (--force sends it)")
    typer.echo(f"redrove {len(done.back)} notifications")
