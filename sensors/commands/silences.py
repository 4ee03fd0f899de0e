"""``hookbus silences``: silence alerts for a while, as Alertmanager does."""

from __future__ import annotations

import getpass
import json

import click
from rich.console import Console
from rich.table import Table

from bus.settings import BusSettings
from notifiers.silences import new_silence, parse_duration, with_silences
from sensors.commands.support import HELP_JSON, guard
from sensors.tables import id_column

HELP_SILENCES = "Silence alerts (every notification rule) for a while, as Alertmanager does."
HELP_SILENCES_ADD = "Silence alerts matching every given --job/--op/--rule/--tag, --for a while."
HELP_SILENCES_LIST = "List active silences with how many alerts each suppressed."
HELP_SILENCES_REMOVE = "End silence SILENCE_ID now."


@click.group(help=HELP_SILENCES)
def silences() -> None:
    """Silences live in Redis; every worker applies them at once."""


@silences.command("add", help=HELP_SILENCES_ADD)
@click.option("--job", help="Only alerts of this job.")
@click.option("--op", help="Only alerts of this op (name or step key).")
@click.option("--rule", help="Only alerts of this notification rule.")
@click.option("--tag", "tags", multiple=True, help="Only runs with this tag (key=value).")
@click.option("--for", "duration", required=True, help="How long: 90s, 30m, 2h, 1d, 1w.")
@click.option("--comment", default="", help="Why (shown in the list).")
@click.option("--by", "created_by", default=lambda: getpass.getuser(), help="Who.")
@click.pass_obj
def silences_add(
    debug: bool,
    job: str | None,
    op: str | None,
    rule: str | None,
    tags: tuple[str, ...],
    duration: str,
    comment: str,
    created_by: str,
) -> None:
    settings = guard(debug, BusSettings)
    tag_map = dict(map(_key_value, tags))
    silence = guard(
        debug,
        lambda: new_silence(
            duration=parse_duration(duration),
            job=job,
            op=op,
            rule=rule,
            tags=tag_map,
            created_by=created_by,
            comment=comment,
        ),
    )
    guard(debug, lambda: with_silences(settings, lambda store: store.add(silence)))
    click.echo(f"silence {silence.id} added: {silence.describe()} until {silence.ends_at:%c %Z}")


@silences.command("list", help=HELP_SILENCES_LIST)
@click.option("--json", "as_json", is_flag=True, help=HELP_JSON)
@click.pass_obj
def silences_list(debug: bool, as_json: bool) -> None:
    settings = guard(debug, BusSettings)
    listed = guard(debug, lambda: with_silences(settings, lambda store: store.list()))
    if as_json:
        for silence, hits in listed:
            click.echo(json.dumps({**silence.model_dump(mode="json"), "suppressed": hits}))
        return
    ids = id_column("id", [silence.id for silence, _ in listed])
    table = Table(ids, "matches", "ends", "suppressed", "by", "comment", title="Silences")
    for silence, hits in listed:
        ends = f"{silence.ends_at:%Y-%m-%d %H:%M:%S %Z}"
        table.add_row(
            silence.id, silence.describe(), ends, str(hits), silence.created_by, silence.comment
        )
    Console().print(table)


@silences.command("remove", help=HELP_SILENCES_REMOVE)
@click.argument("silence_id")
@click.pass_obj
def silences_remove(debug: bool, silence_id: str) -> None:
    settings = guard(debug, BusSettings)
    guard(debug, lambda: with_silences(settings, lambda store: store.remove(silence_id)))
    click.echo(f"silence {silence_id} removed")


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise click.BadParameter(
            f"tag {text!r} is not key=value: got {text!r}. Use --tag team=data."
        )
    return key, value
