"""``hookbus spool``: the local spool of events that waited for Redis."""

from __future__ import annotations

import click

from engine.launch import flush_spool_dir
from engine.settings import EngineSettings
from sensors.commands.support import guard
from sensors.logs import configure_logging

HELP_SPOOL = "The local spool of events that waited for Redis."
HELP_SPOOL_FLUSH = "Publish the spooled events of runs that have ended (HOOKBUS_SPOOL_DIR)."


@click.group(help=HELP_SPOOL)
def spool() -> None:
    pass


@spool.command("flush", help=HELP_SPOOL_FLUSH)
@click.pass_obj
def spool_flush(debug: bool) -> None:
    configure_logging()
    settings = guard(debug, EngineSettings)
    count = guard(debug, lambda: flush_spool_dir(settings))
    click.echo(
        f"added {count} spooled event(s) from {settings.spool_dir} "
        "(events Redis already held are not added again)"
    )
