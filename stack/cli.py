"""``pipeline-stack up | down | status | restart PART``: the local stack from the command line
(also ``pipeline stack ...``)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from pipeline.settings import ConfigError, load_settings
from pipeline.settings import run_dir as default_run_dir
from stack import launcher
from stack.errors import StartError

cli = typer.Typer(
    help="Run the local stack: Kafka, Postgres, ClickHouse, ingest, streams, sinks, notify and "
    "the dashboard.",
    no_args_is_help=True,
    add_completion=False,
)
#: --run-dir, else PIPELINE_RUN_DIR, else .run (read when the command runs)
RunDir = typer.Option(None, help="the stack's run folder (default: $PIPELINE_RUN_DIR, else .run)")
PARTS = ", ".join((*launcher.INFRA, *launcher.SERVICES))


def clock(epoch: float) -> str:
    """A wall-clock time as HH:MM:SS (local time), or '?' when unknown."""
    return time.strftime("%H:%M:%S", time.localtime(epoch)) if epoch else "?"


def describe(report: launcher.UpReport) -> list[str]:
    """What ``up`` did, in a few lines: started, restarted or reused, and since when."""
    parts = report.info.parts
    if report.fresh:
        return [f"started the stack: {', '.join(report.started)}"] + [
            f"  {n:<11} ready in {parts[n].start_s:6.2f} s  pid {parts[n].pid}"
            for n in report.started
        ]
    since = min((parts[n].started_at for n in report.running if parts[n].started_at), default=0)
    kept = f"{', '.join(report.running)} kept running (up since {clock(since)})"
    if not report.started:
        return [f"reused the running stack: every part was up (since {clock(since)})"]
    which = ", ".join(report.started)
    lines = [
        f"restarted {which} on its old ports (it was down)"
        if len(report.started) == 1
        else f"restarted {which} on their old ports (they were down)"
    ]
    lines += [
        f"  {n:<11} ready in {parts[n].start_s:6.2f} s  pid {parts[n].pid}" for n in report.started
    ]
    return [*lines, kept if report.running else "every part was down; addresses unchanged"]


@cli.command()
def up(run_dir: Path | None = RunDir, infra_only: bool = False) -> None:
    """Start the stack in the background, or restart only its parts that are down (on their
    old ports), and wait until every part answers."""
    run_dir = run_dir or default_run_dir()
    try:
        report = launcher.ensure_up(run_dir, load_settings(), services_too=not infra_only)
    except (StartError, ConfigError) as exc:
        typer.echo(f"stack up: {exc}", err=True)
        raise typer.Exit(1) from None
    for line in describe(report):
        typer.echo(line)
    verb = "wrote" if report.fresh else "unchanged:"
    typer.echo(f"{verb} {run_dir / 'stack.env'}")


@cli.command()
def down(run_dir: Path | None = RunDir) -> None:
    """Stop every part of the stack."""
    run_dir = run_dir or default_run_dir()
    stopped = launcher.down(run_dir)
    typer.echo(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@cli.command()
def restart(
    part: str = typer.Argument(..., help=f"one of {PARTS}"), run_dir: Path | None = RunDir
) -> None:
    """Restart one part on its old ports (the rest keep running) and wait until it answers."""
    run_dir = run_dir or default_run_dir()
    if part not in (*launcher.INFRA, *launcher.SERVICES):
        typer.echo(f"stack restart: no part {part!r}; one of {PARTS}", err=True)
        raise typer.Exit(1)
    try:
        seconds = launcher.restart_part(run_dir, part)
    except StartError as exc:
        typer.echo(f"stack restart: {str(exc).splitlines()[0]}", err=True)
        raise typer.Exit(1) from None
    info = launcher.StackInfo.load(run_dir.resolve())
    pid = info.parts[part].pid if info else 0
    typer.echo(f"restarted {part}: ready in {seconds:.2f} s, pid {pid}, on its old ports")


@cli.command()
def status(run_dir: Path | None = RunDir) -> None:
    """Show each part: up or down, since when, start time, memory, where it listens."""
    run_dir = run_dir or default_run_dir()
    rows = launcher.status(run_dir)
    if not rows:
        typer.echo("the stack is not running (make up starts it)")
        return
    for r in rows:
        state = "up" if r.alive else "DOWN"
        since = f"since {clock(r.started_at):<8}" if r.alive else ""
        typer.echo(
            f"{r.name:<11} {state:<5} {since:<14}  ready in {r.start_s:6.2f} s  "
            f"rss {r.rss_mb:7.1f} MiB  {r.listens}"
        )
    if down_parts := [r.name for r in rows if not r.alive]:
        typer.echo(
            f"down: {', '.join(down_parts)}; `make up` restarts only these, on their old ports"
        )


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
