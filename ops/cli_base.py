"""What every ``pipeline`` subcommand shares: the app, settings, one-line errors, printing.

Values from the outside (ids, order ids, reasons, topic names) are printed through rich,
which reads ``[...]`` as markup: ``safe`` escapes them, so ``[duplicate]`` stays visible.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ops.context import settings_for
from ops.errors import OpsError
from pipeline.settings import ConfigError, Settings, run_dir
from stack.errors import StartError

T = TypeVar("T")
app = typer.Typer(
    help="SRE tools for the checkout pipeline: replay, republish, dead letters, rebuild, "
    "inspect, stuck payments, and the local stack.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)
# the commands say what failed in one line; the drivers' own error logs would add more lines
logging.getLogger("clickhouse_connect").setLevel(logging.CRITICAL)


def settings() -> Settings:
    return settings_for(run_dir())


def out() -> Console:
    """Standard output; not a terminal: no colour codes, and tables 160 columns wide."""
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)


def safe(value: Any) -> str:
    """An outside value as literal text inside rich markup."""
    return escape(str(value))


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


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.speed} rec/s"),
        TimeRemainingColumn(),
        console=console,
        disable=not sys.stderr.isatty(),
    )


def parse_time(text: str | None) -> datetime | None:
    """ISO 8601; without a zone, UTC."""
    if text is None:
        return None
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise OpsError(f"not an ISO 8601 time: {text!r}") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def ms(text: str | None) -> int | None:
    ts = parse_time(text)
    return None if ts is None else int(ts.timestamp() * 1000)


def human_ms(value: Any) -> str:
    """Epoch milliseconds as ISO 8601 UTC to the millisecond; '-' when absent."""
    try:
        ts = datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return "-"
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def human_time(value: Any) -> str:
    """An ISO-ish time text (ISO 8601 or Postgres' ``2026-01-01 10:00:00+00:00``) in UTC."""
    if value is None:
        return "-"
    try:
        ts = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def duration_s(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``2h``, ``1d`` as seconds."""
    m = _DURATION.match(text)
    if not m:
        raise OpsError(f"not a duration: {text!r} (say 90s, 30m, 2h or 1d)")
    return float(m.group(1)) * _UNIT_S[m.group(2)]
