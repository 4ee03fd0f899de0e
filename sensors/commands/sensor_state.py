"""``hookbus sensors``: list, stop, start and replay sensors."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from bus.connection import connect
from bus.settings import BusSettings
from sensors.commands.support import HELP_JSON, guard
from sensors.control import (
    parse_since,
    replay_sensor,
    sensor_states,
    start_sensor,
    stop_sensor,
)
from sensors.tables import id_column

HELP_SENSORS = "List, stop, start and replay sensors (each is its own consumer group)."
HELP_SENSORS_LIST = "List sensors with their state, lag and pending entries."
HELP_SENSORS_STOP = "Stop sensor NAME on every worker; its position is kept."
HELP_SENSORS_START = "Start sensor NAME again, from now (events while stopped are skipped)."
HELP_SENSORS_RESUME = "Continue from where it stopped instead of from now."
HELP_SENSORS_REPLAY = "Deliver the events of the last --since (e.g. 2h) to sensor NAME again."


@click.group("sensors", help=HELP_SENSORS)
def sensors_group() -> None:
    pass


@sensors_group.command("list", help=HELP_SENSORS_LIST)
@click.option("--json", "as_json", is_flag=True, help=HELP_JSON)
@click.pass_obj
def sensors_list(debug: bool, as_json: bool) -> None:
    settings = guard(debug, BusSettings)
    states = guard(debug, lambda: sensor_states(connect(settings), settings.keys))
    if as_json:
        click.echo(json.dumps([state.model_dump(mode="json") for state in states], indent=2))
        return
    names = id_column("sensor", [state.name for state in states])
    table = Table(names, "state", "lag", "pending", title="Sensors")
    for state in states:
        lag = "?" if state.lag is None else str(state.lag)
        table.add_row(
            state.name, "stopped" if state.stopped else "running", lag, str(state.pending)
        )
    Console().print(table)


@sensors_group.command("stop", help=HELP_SENSORS_STOP)
@click.argument("name")
@click.pass_obj
def sensors_stop(debug: bool, name: str) -> None:
    settings = guard(debug, BusSettings)
    guard(debug, lambda: stop_sensor(connect(settings), settings.keys, name))
    click.echo(f"sensor {name} stopped")


@sensors_group.command("start", help=HELP_SENSORS_START)
@click.argument("name")
@click.option("--resume", is_flag=True, help=HELP_SENSORS_RESUME)
@click.pass_obj
def sensors_start(debug: bool, name: str, resume: bool) -> None:
    settings = guard(debug, BusSettings)
    guard(debug, lambda: start_sensor(connect(settings), settings.keys, name, resume=resume))
    click.echo(f"sensor {name} started")


@sensors_group.command("replay", help=HELP_SENSORS_REPLAY)
@click.argument("name")
@click.option("--since", required=True, help="How far back: 90s, 15m, 2h, 7d.")
@click.pass_obj
def sensors_replay(debug: bool, name: str, since: str) -> None:
    settings = guard(debug, BusSettings)
    window = guard(debug, lambda: parse_since(since))
    start = guard(
        debug, lambda: replay_sensor(connect(settings), settings.keys, name, since=window)
    )
    click.echo(f"sensor {name} replays from {start}")
