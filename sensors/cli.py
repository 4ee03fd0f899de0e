"""The ``hookbus`` command: every subcommand is registered here, each a thin wrapper.

Each command parses its flags, loads its settings once (``HOOKBUS_*``), and calls one
public function. Errors hookbus raises on purpose are printed as one line, not a traceback
(``--debug`` shows it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TypeVar

import click
from pydantic import ValidationError

from bus.errors import HookbusError
from bus.settings import BusSettings
from engine.launch import run_job
from engine.settings import EngineSettings
from sensors.demo import run_demo
from sensors.logs import configure_logging
from sensors.registry import CodeLocation
from sensors.runner import run_worker
from sensors.settings import WorkerSettings

HELP_MAIN = "hookbus: hooks, sensors and alerts for data pipelines, over Redis Streams."
HELP_WORKER = "Start a sensor worker that runs the hooks and sensors of code location MODULE."
HELP_RUN = "Run job JOB of code location MODULE; every transition is published to Redis."
HELP_DEMO = "Start a worker, run a failing example job, and show the alert the worker sent."
HELP_DEBUG = "Show full tracebacks instead of one-line errors."

T = TypeVar("T")


@click.group(help=HELP_MAIN)
@click.option("--debug", is_flag=True, help=HELP_DEBUG)
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    ctx.obj = debug
    # A code location named on the command line is imported relative to where we stand.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


@main.command(help=HELP_WORKER)
@click.argument("module")
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
@click.pass_obj
def worker(debug: bool, module: str, verbose: bool) -> None:
    configure_logging(verbose=verbose)
    settings = _guard(debug, WorkerSettings)
    location = _guard(debug, lambda: CodeLocation.load(module))
    run_worker(location, settings, env=dict(os.environ))


@main.command(help=HELP_RUN)
@click.argument("module")
@click.argument("job_name", metavar="JOB")
@click.pass_obj
def run(debug: bool, module: str, job_name: str) -> None:
    configure_logging()
    settings = _guard(debug, EngineSettings)
    result = _guard(debug, lambda: run_job(module, job_name, settings=settings))
    click.echo(f"run {result.run_id} of job {result.job_name}: {result.state}")
    sys.exit(0 if result.success else 1)


@main.command(help=HELP_DEMO)
@click.pass_obj
def demo(debug: bool) -> None:
    settings = _guard(debug, BusSettings)
    sys.exit(_guard(debug, lambda: run_demo(settings, env=dict(os.environ))))


def _guard(debug: bool, action: Callable[[], T]) -> T:
    """Run ``action``; turn hookbus's own errors into one clear line and exit code 2."""
    try:
        return action()
    except (HookbusError, ValidationError) as exc:
        if debug:
            raise
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(2)
