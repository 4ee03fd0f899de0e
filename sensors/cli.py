"""The ``hookbus`` command: every subcommand is registered here, each a thin wrapper.

Each command parses its flags, loads its settings once (``HOOKBUS_*``), and calls one
public function. Errors hookbus raises on purpose are printed as one line, not a traceback
(``--debug`` shows it).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from bus.connection import connect
from bus.inspection import inspect_bus
from bus.settings import BusSettings
from engine.launch import run_job, run_supervised
from engine.settings import EngineSettings
from sensors.commands import (
    HELP_JSON,
    dlq,
    events,
    guard,
    runs,
    sensors_group,
    silences,
    spool,
)
from sensors.demo import run_demo
from sensors.health import worker_alive_on_host
from sensors.logs import configure_logging
from sensors.registry import CodeLocation
from sensors.runner import run_watcher, run_worker
from sensors.settings import HealthThresholds, WatchSettings, WorkerSettings
from sensors.settings_check import check_environment, check_values
from sensors.status import find_problems, render_status
from sensors.supervisor import supervise_workers

HELP_MAIN = "hookbus: hooks, sensors and alerts for data pipelines, over Redis Streams."
HELP_WORKER = "Start a sensor worker that runs the hooks and sensors of code location MODULE."
HELP_RUN = "Run job JOB of code location MODULE; every transition is published to Redis."
HELP_DEMO = "Start a worker, run a failing example job, and show the alert the worker sent."
HELP_DEBUG = "Show full tracebacks instead of one-line errors."
HELP_NO_CRASH_SCENE = "Skip scene 2 (a supervised job killed with SIGKILL mid-op)."
HELP_CHECK = "Do not start: exit 0 if a worker on this host is alive (its heartbeat key), else 1."
HELP_STATUS = "Show streams, groups, lag, pending, workers and dead letters; exit 1 if unhealthy."
HELP_WATCH = (
    "Watch the alerting path itself; notify when it stalls or dead-letters, and when it heals."
)
HELP_LOG = "Log as text lines (default) or as JSON objects, one per line."
HELP_CONFIG = "Run config YAML (ops: {<op>: {config: ...}}, resources: {<key>: {config: ...}})."
HELP_IN_PROCESS = "Run the job in this process, unsupervised (what the supervised child runs)."
HELP_CONCURRENCY = "Handlers running at once per worker process (HOOKBUS_CONCURRENCY)."
HELP_PROCESSES = "Run P worker processes under a supervisor that restarts them (default 1)."


@click.group(help=HELP_MAIN)
@click.option("--debug", is_flag=True, help=HELP_DEBUG)
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    ctx.obj = debug
    guard(debug, lambda: check_environment(os.environ))
    guard(debug, check_values)
    # A code location named on the command line is imported relative to where we stand.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


@main.command(help=HELP_WORKER)
@click.argument("module")
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
@click.option("--check", is_flag=True, help=HELP_CHECK)
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", help=HELP_LOG)
@click.option("--concurrency", type=click.IntRange(min=1), help=HELP_CONCURRENCY)
@click.option("--processes", type=click.IntRange(min=1), default=1, help=HELP_PROCESSES)
@click.pass_obj
def worker(
    debug: bool,
    module: str,
    verbose: bool,
    check: bool,
    log_format: str,
    concurrency: int | None,
    processes: int,
) -> None:
    configure_logging(verbose=verbose, json=log_format == "json")
    overrides: dict[str, Any] = {} if concurrency is None else {"concurrency": concurrency}
    settings = guard(debug, lambda: WorkerSettings(**overrides))
    if check:
        sys.exit(
            0 if guard(debug, lambda: worker_alive_on_host(connect(settings), settings.keys)) else 1
        )
    location = guard(debug, lambda: CodeLocation.load(module))
    if processes > 1:
        flags = ["--log-format", log_format] + (["-v"] if verbose else [])
        sys.exit(supervise_workers(module, settings, processes=processes, flags=flags))
    run_worker(location, settings, env=dict(os.environ))


@main.command(help=HELP_RUN)
@click.argument("module")
@click.argument("job_name", metavar="JOB")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help=HELP_CONFIG)
@click.option("--in-process", is_flag=True, hidden=True, help=HELP_IN_PROCESS)
@click.option("--run-id", hidden=True, help="The run id (with --in-process).")
@click.pass_obj
def run(
    debug: bool,
    module: str,
    job_name: str,
    config_path: Path | None,
    in_process: bool,
    run_id: str | None,
) -> None:
    configure_logging()
    settings = guard(debug, EngineSettings)
    if in_process:
        result = guard(
            debug,
            lambda: run_job(
                module, job_name, settings=settings, run_id=run_id, config_path=config_path
            ),
        )
        click.echo(f"run {result.run_id} of job {result.job_name}: {result.state}")
        if result.error is not None:  # show why, where the job was run, as Dagster does
            click.secho(result.error.traceback or result.error.message, fg="red", err=True)
        sys.exit(0 if result.success else 1)
    ended = guard(
        debug, lambda: run_supervised(module, job_name, settings=settings, config_path=config_path)
    )
    if ended.crash_published:
        click.secho(f"run {ended.run_id} crashed: {ended.signal_name or ended.exit_code}", fg="red")
    sys.exit(ended.exit_code if ended.exit_code >= 0 else 128 - ended.exit_code)


@main.command(help=HELP_DEMO)
@click.option("--no-crash-scene", is_flag=True, help=HELP_NO_CRASH_SCENE)
@click.pass_obj
def demo(debug: bool, no_crash_scene: bool) -> None:
    settings = guard(debug, BusSettings)
    try:
        code = guard(
            debug, lambda: run_demo(settings, env=dict(os.environ), crash_scene=not no_crash_scene)
        )
    except KeyboardInterrupt:
        click.echo("\ndemo interrupted; everything it started has been stopped.", err=True)
        code = 130
    sys.exit(code)


@main.command(help=HELP_WATCH)
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", help=HELP_LOG)
@click.pass_obj
def watch(debug: bool, log_format: str) -> None:
    configure_logging(json=log_format == "json")
    settings = guard(debug, WatchSettings)
    run_watcher(settings, env=dict(os.environ))


@main.command(help=HELP_STATUS)
@click.option("--json", "as_json", is_flag=True, help=HELP_JSON)
@click.pass_obj
def status(debug: bool, as_json: bool) -> None:
    thresholds = guard(debug, HealthThresholds)
    report = guard(debug, lambda: inspect_bus(connect(thresholds), thresholds.keys))
    problems = find_problems(report, thresholds)
    if as_json:
        click.echo(json.dumps({**report.model_dump(mode="json"), "problems": problems}, indent=2))
    else:
        render_status(report, problems, Console())
    sys.exit(1 if problems else 0)


# Every subcommand group, registered here so the whole CLI is visible in one place.
main.add_command(runs)
main.add_command(spool)
main.add_command(sensors_group)
main.add_command(events)
main.add_command(dlq)
main.add_command(silences)
