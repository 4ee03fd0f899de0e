"""``hookbus events``: the events on the bus, as readable lines."""

from __future__ import annotations

import contextlib
from itertools import chain

import click
from rich.console import Console

from bus.connection import connect
from bus.settings import BusSettings
from sensors.commands.support import guard
from sensors.tail import EventFilter, follow_events, format_event, recent_events

HELP_EVENTS = "Look at the events on the bus."
HELP_TAIL = "Print recent events as readable lines; --follow keeps printing new ones."


@click.group(help=HELP_EVENTS)
def events() -> None:
    pass


@events.command("tail", help=HELP_TAIL)
@click.option("-n", "--count", default=20, show_default=True, help="How many recent events.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events.")
@click.option("--job", help="Only this job.")
@click.option("--run", "run_id", help="Only this run (a prefix of its id is enough).")
@click.option("--state", help="Only events entering this state (check: time-based checks).")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line.")
@click.pass_obj
def tail(
    debug: bool,
    count: int,
    follow: bool,
    job: str | None,
    run_id: str | None,
    state: str | None,
    as_json: bool,
) -> None:
    settings = guard(debug, BusSettings)
    client = connect(settings)
    wanted = EventFilter(job=job, run=run_id, state=state)
    recent, last_ids = guard(debug, lambda: recent_events(client, settings.keys, count=count))
    stream = chain(recent, follow_events(client, last_ids)) if follow else iter(recent)
    console = Console(highlight=False)
    with contextlib.suppress(KeyboardInterrupt):
        for event in filter(wanted.matches, stream):
            console.print(
                event.model_dump_json() if as_json else format_event(event), soft_wrap=True
            )
