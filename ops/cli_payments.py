"""``pipeline inspect`` (one payment's journey) and ``pipeline stuck`` (payments waiting)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from ops import inspect as inspect_ops
from ops import stuck as stuck_ops
from ops.cli_base import (
    app,
    command,
    duration_s,
    human_ms,
    human_time,
    out,
    run,
    safe,
    settings,
)


@app.command()
@command("inspect")
def inspect(
    provider: Annotated[str, typer.Argument(help="coinbase, btcpay, nowpayments, ...")],
    external_id: Annotated[
        str, typer.Argument(help="the provider's payment id, or its reference (Coinbase code)")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """One payment's journey: raw webhooks, events, transitions, Postgres and ClickHouse rows."""
    j = run(inspect_ops.journey(settings(), provider, external_id))
    if as_json:
        typer.echo(orjson.dumps(j).decode())
        return
    show_journey(j)


def _outcome(headers: dict[str, str], outcome: dict[Any, Any]) -> str:
    if headers.get("kind") == "checkout":  # a registration moves no status: no transition
        return "checkout registered"
    return str(outcome.get(headers.get("id"), "no transition (yet)"))


def show_journey(j: dict[str, Any]) -> None:
    """Every outside value escaped: ``[duplicate]`` is text, not rich markup."""
    o = out()
    title = f"{j['provider']} / {j['external_id']}"
    o.rule(safe(title + (f" (reference {j['reference']})" if j.get("reference") else "")))
    _show_kafka(o, j)
    _show_stores(o, j)


def _show_kafka(o: Console, j: dict[str, Any]) -> None:
    outcome = {t.get("delivery_id"): t.get("outcome", "?") for t in j["transitions"]}
    o.print(f"[bold]raw webhooks in Kafka[/]: {len(j['raw_webhooks'])}")
    for r in j["raw_webhooks"]:
        h = r["headers"]
        o.print(
            f"  {safe(h.get('id'))} partition {r['partition']} offset {r['offset']} "
            f"received {human_ms(h.get('received-at-ms'))} "
            f"outcome {safe(_outcome(h, outcome))}"
        )
    o.print(f"[bold]normalized events[/]: {len(j['events'])}")
    for e in j["events"]:
        if "error" in e:
            o.print(f"  offset {e['offset']}: unreadable, {safe(e['error'])}")
        elif e.get("type") == "checkout":
            o.print(
                f"  checkout {safe(e['amount'])} {safe(e['currency'])} "
                f"order {safe(e['order_id'])} at {human_time(e.get('created_at'))}"
            )
        else:
            o.print(
                f"  {safe(e['event_id'])} {safe(e['status'])} at {human_time(e['occurred_at'])}"
            )
    o.print(f"[bold]transitions[/]: {len(j['transitions'])}")
    for t in j["transitions"]:
        note = f" ({t['note']})" if t.get("note") else ""
        o.print(
            f"  v{t['version']} {safe(t['from_status'])} -> {safe(t['to_status'])} "
            f"by {safe(t['event_id'])} delivery {safe(t.get('delivery_id', '-'))} "
            f"received {human_ms(t.get('delivery_received_at_ms'))}: "
            f"{safe(t.get('outcome', '?'))}{safe(note)}"
        )


def _show_stores(o: Console, j: dict[str, Any]) -> None:
    row = j["postgres"]["transaction"]
    o.print(
        "[bold]Postgres[/]: "
        + (
            f"{safe(row['status'])} v{row['version']} {safe(row['amount'])} "
            f"{safe(row['currency'])} order {safe(row['order_id'])} "
            f"updated {human_time(row['updated_at'])}"
            if row
            else "no row"
        )
    )
    o.print(f"  history rows: {len(j['postgres']['history'])}")
    for h in j["postgres"]["history"]:
        o.print(
            f"  v{h['version']} {safe(h.get('from_status'))} -> {safe(h.get('to_status'))} "
            f"by {safe(h['event_id'])} at {human_time(h['occurred_at'])}"
        )
    ch = j["clickhouse"]
    o.print(
        f"[bold]ClickHouse[/]: {len(ch['payment_events'])} payment_events, "
        f"{len(ch['ingest_log'])} deliveries in ingest_log"
    )
    for d in ch["ingest_log"]:
        o.print(
            f"  {safe(d['delivery_id'])} received {human_time(d['received_at'])}: "
            f"{safe(d['outcome'])}"
        )


@app.command()
@command("stuck")
def stuck(
    older_than: Annotated[
        str | None,
        typer.Option(help="waiting longer than this (90s, 30m, 2h); default: stuck_after_s"),
    ] = None,
    limit: Annotated[int, typer.Option(help="at most N, oldest first")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Payments registered or pending (new, pending, confirmed) with no news for longer than
    a limit: poll their provider for a webhook it may have lost."""
    s = settings()
    seconds = s.stuck_after_s if older_than is None else duration_s(older_than)
    rows = run(stuck_ops.stuck(s.postgres.dsn.get_secret_value(), seconds, limit))
    if as_json:
        typer.echo(orjson.dumps(rows, default=str).decode())
        return
    table = Table(
        "provider",
        "payment id",
        "status",
        "order",
        "amount",
        "last news (UTC)",
        "waiting",
        title=f"{len(rows)} payments waiting longer than {seconds:g} s",
    )
    for r in rows:
        table.add_row(
            safe(r["provider"]),
            safe(r["external_id"]),
            safe(r["status"]),
            safe(r["order_id"] or "-"),
            safe(f"{r['expected_amount'] or r['amount'] or '-'} {r['currency'] or ''}"),
            human_time(r["updated_at"].isoformat()),
            f"{r['waiting_s'] / 60:.1f} min",
        )
    out().print(table)
