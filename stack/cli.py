"""``pipeline-stack up | down | status``: the local stack from the command line."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from pipeline.settings import ConfigError, load_settings
from stack import launcher
from stack.errors import StartError

cli = typer.Typer(
    help="Run the local stack: Kafka, Postgres, ClickHouse, ingest, streams, sinks.",
    no_args_is_help=True,
    add_completion=False,
)
RUN_DIR = Path(os.environ.get("PIPELINE_RUN_DIR", ".run"))


@cli.command()
def up(run_dir: Path = RUN_DIR, infra_only: bool = False) -> None:
    """Start the whole stack in the background and wait until every part answers."""
    try:
        info = launcher.up(run_dir, load_settings(), services_too=not infra_only)
    except (StartError, ConfigError) as exc:
        typer.echo(f"stack up: {exc}", err=True)
        raise typer.Exit(1) from None
    for name, part in info.parts.items():
        typer.echo(f"{name:<11} ready in {part.start_s:6.2f} s  pid {part.pid}")
    typer.echo(f"wrote {run_dir / 'stack.env'}")


@cli.command()
def down(run_dir: Path = RUN_DIR) -> None:
    """Stop every part of the stack."""
    stopped = launcher.down(run_dir)
    typer.echo(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@cli.command()
def status(run_dir: Path = RUN_DIR) -> None:
    """Show each part: alive, start time, resident memory."""
    rows = launcher.status(run_dir)
    if not rows:
        typer.echo("the stack is not running")
        raise typer.Exit(1)
    for name, alive, start_s, rss, port in rows:
        state = "up" if alive else "DOWN"
        typer.echo(f"{name:<11} {state:<5} start {start_s:6.2f} s  rss {rss:7.1f} MiB  port {port}")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
