"""``hookbus dlq``: inspect, replay and purge dead letters."""

from __future__ import annotations

import json
from functools import partial

import click
from rich.console import Console
from rich.table import Table

from bus.connection import connect
from bus.deadletter_admin import (
    get_dead_letter,
    list_dead_letters,
    purge_dead_letters,
    replay_dead_letter,
)
from bus.settings import BusSettings
from sensors.commands.support import HELP_JSON, guard
from sensors.tables import id_column

HELP_DLQ = "Inspect, replay and purge dead letters."
HELP_DLQ_LIST = "List dead letters, newest first."
HELP_DLQ_SHOW = "Show one dead letter in full, with its error and payload."
HELP_DLQ_REPLAY = "Send a dead letter's event back to its stream (after fixing the cause)."
HELP_DLQ_PURGE = "Delete the given dead letters, or all of them with --all."


@click.group(help=HELP_DLQ)
def dlq() -> None:
    pass


@dlq.command("list", help=HELP_DLQ_LIST)
@click.option("-n", "--limit", default=50, show_default=True, help="How many to show.")
@click.option("--json", "as_json", is_flag=True, help=HELP_JSON)
@click.pass_obj
def dlq_list(debug: bool, limit: int, as_json: bool) -> None:
    settings = guard(debug, BusSettings)
    letters = guard(debug, lambda: list_dead_letters(connect(settings), settings.keys, limit=limit))
    if as_json:
        click.echo(json.dumps([letter.model_dump(mode="json") for letter in letters], indent=2))
        return
    table = Table(
        id_column("id", [letter.id for letter in letters]),
        "failed at",
        "reason",
        "handler",
        "attempts",
        "error",
        title="Dead letters",
    )
    for letter in letters:
        failed_at = letter.failed_at.strftime("%Y-%m-%d %H:%M:%S") if letter.failed_at else "-"
        table.add_row(
            letter.id,
            failed_at,
            letter.reason,
            letter.handler or "-",
            str(letter.attempts),
            letter.error if len(letter.error) <= 100 else letter.error[:99] + "…",
        )
    Console().print(table)


@dlq.command("show", help=HELP_DLQ_SHOW)
@click.argument("letter_id")
@click.pass_obj
def dlq_show(debug: bool, letter_id: str) -> None:
    settings = guard(debug, BusSettings)
    letter = guard(debug, lambda: get_dead_letter(connect(settings), settings.keys, letter_id))
    click.echo(json.dumps(letter.model_dump(mode="json"), indent=2))


@dlq.command("replay", help=HELP_DLQ_REPLAY)
@click.argument("letter_ids", nargs=-1, required=True)
@click.pass_obj
def dlq_replay(debug: bool, letter_ids: tuple[str, ...]) -> None:
    settings = guard(debug, BusSettings)
    client = connect(settings)
    for letter_id in letter_ids:
        new_id = guard(debug, partial(replay_dead_letter, client, settings.keys, letter_id))
        click.echo(f"replayed {letter_id} as {new_id}")


@dlq.command("purge", help=HELP_DLQ_PURGE)
@click.argument("letter_ids", nargs=-1)
@click.option("--all", "purge_all", is_flag=True, help="Delete every dead letter.")
@click.pass_obj
def dlq_purge(debug: bool, letter_ids: tuple[str, ...], purge_all: bool) -> None:
    if not letter_ids and not purge_all:
        raise click.UsageError("name the dead letters to purge, or pass --all")
    settings = guard(debug, BusSettings)
    ids = None if purge_all else list(letter_ids)
    removed = guard(debug, lambda: purge_dead_letters(connect(settings), settings.keys, ids))
    click.echo(f"purged {removed} dead letter(s)")
