"""``hookbus runs``: list, show and cancel runs."""

from __future__ import annotations

import json
import sys
from functools import partial

import click
from rich.console import Console

from bus.connection import connect
from bus.errors import HookbusError
from bus.inspection import active_runs
from bus.run_history import run_events
from bus.settings import BusSettings
from engine.cancel import cancel_run
from sensors.commands.support import HELP_JSON, guard
from sensors.status import active_runs_table
from sensors.tail import format_event

HELP_RUNS_LIST = "List runs that have not ended, with their state, running ops and deadline."
HELP_RUNS_SHOW = "Show every event of run RUN_ID still on the bus, in order."
HELP_RUNS = "Act on runs."
HELP_CANCEL = "Ask run RUN_ID to stop: cancelling now, cancelled at its next op boundary."


@click.group(help=HELP_RUNS)
def runs() -> None:
    pass


@runs.command("list", help=HELP_RUNS_LIST)
@click.option("--json", "as_json", is_flag=True, help=HELP_JSON)
@click.pass_obj
def runs_list(debug: bool, as_json: bool) -> None:
    settings = guard(debug, BusSettings)
    active = guard(debug, lambda: active_runs(connect(settings), settings.keys))
    if as_json:
        click.echo(json.dumps([run.model_dump(mode="json") for run in active], indent=2))
        return
    if not active:
        click.echo("no active runs (every run has ended; see hookbus events tail)")
        return
    Console().print(active_runs_table(active))


@runs.command("show", help=HELP_RUNS_SHOW)
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line.")
@click.pass_obj
def runs_show(debug: bool, run_id: str, as_json: bool) -> None:
    settings = guard(debug, BusSettings)
    found = guard(debug, lambda: run_events(connect(settings), settings.keys, run_id))
    if not found:
        guard(debug, partial(_no_events, run_id))
    console = Console(highlight=False)
    for event in found:
        console.print(event.model_dump_json() if as_json else format_event(event), soft_wrap=True)


@runs.command("cancel", help=HELP_CANCEL)
@click.argument("run_id")
@click.option("--reason", default="cancelled from the command line", help="Why.")
@click.pass_obj
def runs_cancel(debug: bool, run_id: str, reason: str) -> None:
    settings = guard(debug, BusSettings)
    alive = guard(debug, lambda: cancel_run(run_id, settings=settings, reason=reason))
    click.echo(f"cancel requested for run {run_id}" + ("" if alive else " (not running now)"))
    sys.exit(0 if alive else 1)


def _no_events(run_id: str) -> None:
    raise HookbusError(
        f"run {run_id!r} has no events on the bus (a typo, or trimmed by retention). "
        "List active runs with: hookbus runs list"
    )
