"""The ``hookbus`` command: every subcommand is registered here, each a thin wrapper.

Each command parses its flags, loads its settings once (``HOOKBUS_*``), and calls one
public function. Errors hookbus raises on purpose are printed as one line, not a traceback
(``--debug`` shows it).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import sys
from collections.abc import Callable
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import redis
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from bus.connection import connect
from bus.deadletter_admin import (
    get_dead_letter,
    list_dead_letters,
    purge_dead_letters,
    replay_dead_letter,
)
from bus.errors import HookbusError
from bus.inspection import active_runs, inspect_bus
from bus.run_history import run_events
from bus.settings import BusSettings
from engine.cancel import cancel_run
from engine.launch import flush_spool_dir, run_job, run_supervised
from engine.settings import EngineSettings
from notifiers.silences import new_silence, parse_duration, with_silences
from sensors.control import (
    parse_since,
    replay_sensor,
    sensor_states,
    start_sensor,
    stop_sensor,
)
from sensors.demo import run_demo
from sensors.health import worker_alive_on_host
from sensors.logs import configure_logging
from sensors.registry import CodeLocation
from sensors.runner import run_watcher, run_worker
from sensors.settings import HealthThresholds, WatchSettings, WorkerSettings
from sensors.status import active_runs_table, find_problems, render_status
from sensors.supervisor import supervise_workers
from sensors.tail import EventFilter, follow_events, format_event, recent_events

HELP_MAIN = "hookbus: hooks, sensors and alerts for data pipelines, over Redis Streams."
HELP_WORKER = "Start a sensor worker that runs the hooks and sensors of code location MODULE."
HELP_RUN = "Run job JOB of code location MODULE; every transition is published to Redis."
HELP_DEMO = "Start a worker, run a failing example job, and show the alert the worker sent."
HELP_DEBUG = "Show full tracebacks instead of one-line errors."
HELP_NO_CRASH_SCENE = "Skip scene 2 (a supervised job killed with SIGKILL mid-op)."
HELP_CHECK = "Do not start: exit 0 if a worker on this host is alive (its heartbeat key), else 1."
HELP_STATUS = "Show streams, groups, lag, pending, workers and dead letters; exit 1 if unhealthy."
HELP_EVENTS = "Look at the events on the bus."
HELP_TAIL = "Print recent events as readable lines; --follow keeps printing new ones."
HELP_DLQ = "Inspect, replay and purge dead letters."
HELP_DLQ_LIST = "List dead letters, newest first."
HELP_DLQ_SHOW = "Show one dead letter in full, with its error and payload."
HELP_DLQ_REPLAY = "Send a dead letter's event back to its stream (after fixing the cause)."
HELP_DLQ_PURGE = "Delete the given dead letters, or all of them with --all."
HELP_RUNS_LIST = "List runs that have not ended, with their state, running ops and deadline."
HELP_RUNS_SHOW = "Show every event of run RUN_ID still on the bus, in order."
HELP_JSON = "Print JSON instead of a table."
HELP_WATCH = (
    "Watch the alerting path itself; notify when it stalls or dead-letters, and when it heals."
)
HELP_LOG = "Log as text lines (default) or as JSON objects, one per line."
HELP_CONFIG = "Run config YAML (ops: {<op>: {config: ...}}, resources: {<key>: {config: ...}})."
HELP_IN_PROCESS = "Run the job in this process, unsupervised (what the supervised child runs)."
HELP_RUNS = "Act on runs."
HELP_CONCURRENCY = "Handlers running at once per worker process (HOOKBUS_CONCURRENCY)."
HELP_PROCESSES = "Run P worker processes under a supervisor that restarts them (default 1)."
HELP_SENSORS = "List, stop, start and replay sensors (each is its own consumer group)."
HELP_SENSORS_LIST = "List sensors with their state, lag and pending entries."
HELP_SENSORS_STOP = "Stop sensor NAME on every worker; its position is kept."
HELP_SENSORS_START = "Start sensor NAME again, from now (events while stopped are skipped)."
HELP_SENSORS_RESUME = "Continue from where it stopped instead of from now."
HELP_SENSORS_REPLAY = "Deliver the events of the last --since (e.g. 2h) to sensor NAME again."
HELP_CANCEL = "Ask run RUN_ID to stop: cancelling now, cancelled at its next op boundary."
HELP_SPOOL = "The local spool of events that waited for Redis."
HELP_SPOOL_FLUSH = "Publish the spooled events of runs that have ended (HOOKBUS_SPOOL_DIR)."
HELP_SILENCES = "Silence alerts (every notification rule) for a while, as Alertmanager does."
HELP_SILENCES_ADD = "Silence alerts matching every given --job/--op/--rule/--tag, --for a while."
HELP_SILENCES_LIST = "List active silences with how many alerts each suppressed."
HELP_SILENCES_REMOVE = "End silence SILENCE_ID now."

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
    settings = _guard(debug, lambda: WorkerSettings(**overrides))
    if check:
        sys.exit(
            0
            if _guard(debug, lambda: worker_alive_on_host(connect(settings), settings.keys))
            else 1
        )
    location = _guard(debug, lambda: CodeLocation.load(module))
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
    settings = _guard(debug, EngineSettings)
    if in_process:
        result = _guard(
            debug,
            lambda: run_job(
                module, job_name, settings=settings, run_id=run_id, config_path=config_path
            ),
        )
        click.echo(f"run {result.run_id} of job {result.job_name}: {result.state}")
        sys.exit(0 if result.success else 1)
    ended = _guard(
        debug, lambda: run_supervised(module, job_name, settings=settings, config_path=config_path)
    )
    if ended.crash_published:
        click.secho(f"run {ended.run_id} crashed: {ended.signal_name or ended.exit_code}", fg="red")
    sys.exit(ended.exit_code if ended.exit_code >= 0 else 128 - ended.exit_code)


@main.group(help=HELP_RUNS)
def runs() -> None:
    pass


@runs.command("list", help=HELP_RUNS_LIST)
@click.option("--json", "as_json", is_flag=True, help=HELP_JSON)
@click.pass_obj
def runs_list(debug: bool, as_json: bool) -> None:
    settings = _guard(debug, BusSettings)
    active = _guard(debug, lambda: active_runs(connect(settings), settings.keys))
    if as_json:
        click.echo(json.dumps([run.model_dump(mode="json") for run in active], indent=2))
        return
    Console().print(active_runs_table(active))


@runs.command("show", help=HELP_RUNS_SHOW)
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line.")
@click.pass_obj
def runs_show(debug: bool, run_id: str, as_json: bool) -> None:
    settings = _guard(debug, BusSettings)
    found = _guard(debug, lambda: run_events(connect(settings), settings.keys, run_id))
    if not found:
        _guard(debug, partial(_no_events, run_id))
    console = Console(highlight=False)
    for event in found:
        console.print(event.model_dump_json() if as_json else format_event(event), soft_wrap=True)


@runs.command("cancel", help=HELP_CANCEL)
@click.argument("run_id")
@click.option("--reason", default="cancelled from the command line", help="Why.")
@click.pass_obj
def runs_cancel(debug: bool, run_id: str, reason: str) -> None:
    settings = _guard(debug, BusSettings)
    alive = _guard(debug, lambda: cancel_run(run_id, settings=settings, reason=reason))
    click.echo(f"cancel requested for run {run_id}" + ("" if alive else " (not running now)"))
    sys.exit(0 if alive else 1)


@main.group("sensors", help=HELP_SENSORS)
def sensors_group() -> None:
    pass


@sensors_group.command("list", help=HELP_SENSORS_LIST)
@click.pass_obj
def sensors_list(debug: bool) -> None:
    settings = _guard(debug, BusSettings)
    states = _guard(debug, lambda: sensor_states(connect(settings), settings.keys))
    table = Table("sensor", "state", "lag", "pending", title="Sensors")
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
    settings = _guard(debug, BusSettings)
    _guard(debug, lambda: stop_sensor(connect(settings), settings.keys, name))
    click.echo(f"sensor {name} stopped")


@sensors_group.command("start", help=HELP_SENSORS_START)
@click.argument("name")
@click.option("--resume", is_flag=True, help=HELP_SENSORS_RESUME)
@click.pass_obj
def sensors_start(debug: bool, name: str, resume: bool) -> None:
    settings = _guard(debug, BusSettings)
    _guard(debug, lambda: start_sensor(connect(settings), settings.keys, name, resume=resume))
    click.echo(f"sensor {name} started")


@sensors_group.command("replay", help=HELP_SENSORS_REPLAY)
@click.argument("name")
@click.option("--since", required=True, help="How far back: 90s, 15m, 2h, 7d.")
@click.pass_obj
def sensors_replay(debug: bool, name: str, since: str) -> None:
    settings = _guard(debug, BusSettings)
    window = _guard(debug, lambda: parse_since(since))
    start = _guard(
        debug, lambda: replay_sensor(connect(settings), settings.keys, name, since=window)
    )
    click.echo(f"sensor {name} replays from {start}")


@main.group(help=HELP_SPOOL)
def spool() -> None:
    pass


@spool.command("flush", help=HELP_SPOOL_FLUSH)
@click.pass_obj
def spool_flush(debug: bool) -> None:
    configure_logging()
    settings = _guard(debug, EngineSettings)
    count = _guard(debug, lambda: flush_spool_dir(settings))
    click.echo(f"published {count} spooled event(s) from {settings.spool_dir}")


@main.command(help=HELP_DEMO)
@click.option("--no-crash-scene", is_flag=True, help=HELP_NO_CRASH_SCENE)
@click.pass_obj
def demo(debug: bool, no_crash_scene: bool) -> None:
    settings = _guard(debug, BusSettings)
    sys.exit(
        _guard(
            debug,
            lambda: run_demo(settings, env=dict(os.environ), crash_scene=not no_crash_scene),
        )
    )


@main.command(help=HELP_WATCH)
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", help=HELP_LOG)
@click.pass_obj
def watch(debug: bool, log_format: str) -> None:
    configure_logging(json=log_format == "json")
    settings = _guard(debug, WatchSettings)
    run_watcher(settings, env=dict(os.environ))


@main.command(help=HELP_STATUS)
@click.option("--json", "as_json", is_flag=True, help=HELP_JSON)
@click.pass_obj
def status(debug: bool, as_json: bool) -> None:
    thresholds = _guard(debug, HealthThresholds)
    report = _guard(debug, lambda: inspect_bus(connect(thresholds), thresholds.keys))
    problems = find_problems(report, thresholds)
    if as_json:
        click.echo(json.dumps({**report.model_dump(mode="json"), "problems": problems}, indent=2))
    else:
        render_status(report, problems, Console())
    sys.exit(1 if problems else 0)


@main.group(help=HELP_EVENTS)
def events() -> None:
    pass


@events.command("tail", help=HELP_TAIL)
@click.option("-n", "--count", default=20, show_default=True, help="How many recent events.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events.")
@click.option("--job", help="Only this job.")
@click.option("--run", "run_id", help="Only this run (a prefix of its id is enough).")
@click.option("--state", help="Only events entering this state.")
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
    settings = _guard(debug, BusSettings)
    client = connect(settings)
    wanted = EventFilter(job=job, run=run_id, state=state)
    recent, last_ids = _guard(debug, lambda: recent_events(client, settings.keys, count=count))
    stream = chain(recent, follow_events(client, last_ids)) if follow else iter(recent)
    console = Console(highlight=False)
    with contextlib.suppress(KeyboardInterrupt):
        for event in filter(wanted.matches, stream):
            console.print(
                event.model_dump_json() if as_json else format_event(event), soft_wrap=True
            )


@main.group(help=HELP_DLQ)
def dlq() -> None:
    pass


@dlq.command("list", help=HELP_DLQ_LIST)
@click.option("-n", "--limit", default=50, show_default=True, help="How many to show.")
@click.option("--json", "as_json", is_flag=True, help=HELP_JSON)
@click.pass_obj
def dlq_list(debug: bool, limit: int, as_json: bool) -> None:
    settings = _guard(debug, BusSettings)
    letters = _guard(
        debug, lambda: list_dead_letters(connect(settings), settings.keys, limit=limit)
    )
    if as_json:
        click.echo(json.dumps([letter.model_dump(mode="json") for letter in letters], indent=2))
        return
    table = Table("id", "failed at", "reason", "handler", "attempts", "error", title="Dead letters")
    for letter in letters:
        failed_at = letter.failed_at.strftime("%Y-%m-%d %H:%M:%S") if letter.failed_at else "-"
        table.add_row(
            letter.id,
            failed_at,
            letter.reason,
            letter.handler or "-",
            str(letter.attempts),
            letter.error[:80],
        )
    Console().print(table)


@dlq.command("show", help=HELP_DLQ_SHOW)
@click.argument("letter_id")
@click.pass_obj
def dlq_show(debug: bool, letter_id: str) -> None:
    settings = _guard(debug, BusSettings)
    letter = _guard(debug, lambda: get_dead_letter(connect(settings), settings.keys, letter_id))
    click.echo(json.dumps(letter.model_dump(mode="json"), indent=2))


@dlq.command("replay", help=HELP_DLQ_REPLAY)
@click.argument("letter_ids", nargs=-1, required=True)
@click.pass_obj
def dlq_replay(debug: bool, letter_ids: tuple[str, ...]) -> None:
    settings = _guard(debug, BusSettings)
    client = connect(settings)
    for letter_id in letter_ids:
        new_id = _guard(debug, partial(replay_dead_letter, client, settings.keys, letter_id))
        click.echo(f"replayed {letter_id} as {new_id}")


@dlq.command("purge", help=HELP_DLQ_PURGE)
@click.argument("letter_ids", nargs=-1)
@click.option("--all", "purge_all", is_flag=True, help="Delete every dead letter.")
@click.pass_obj
def dlq_purge(debug: bool, letter_ids: tuple[str, ...], purge_all: bool) -> None:
    if not letter_ids and not purge_all:
        raise click.UsageError("name the dead letters to purge, or pass --all")
    settings = _guard(debug, BusSettings)
    ids = None if purge_all else list(letter_ids)
    removed = _guard(debug, lambda: purge_dead_letters(connect(settings), settings.keys, ids))
    click.echo(f"purged {removed} dead letter(s)")


@main.group(help=HELP_SILENCES)
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
    settings = _guard(debug, BusSettings)
    tag_map = dict(map(_key_value, tags))
    silence = _guard(
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
    _guard(debug, lambda: with_silences(settings, lambda store: store.add(silence)))
    click.echo(f"silence {silence.id} added: {silence.describe()} until {silence.ends_at:%c %Z}")


@silences.command("list", help=HELP_SILENCES_LIST)
@click.option("--json", "as_json", is_flag=True, help=HELP_JSON)
@click.pass_obj
def silences_list(debug: bool, as_json: bool) -> None:
    settings = _guard(debug, BusSettings)
    listed = _guard(debug, lambda: with_silences(settings, lambda store: store.list()))
    if as_json:
        for silence, hits in listed:
            click.echo(json.dumps({**silence.model_dump(mode="json"), "suppressed": hits}))
        return
    table = Table("id", "matches", "ends", "suppressed", "by", "comment", title="Silences")
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
    settings = _guard(debug, BusSettings)
    _guard(debug, lambda: with_silences(settings, lambda store: store.remove(silence_id)))
    click.echo(f"silence {silence_id} removed")


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise click.BadParameter(
            f"tag {text!r} is not key=value: got {text!r}. Use --tag team=data."
        )
    return key, value


def _no_events(run_id: str) -> None:
    raise HookbusError(
        f"run {run_id!r} has no events on the bus (a typo, or trimmed by retention). "
        "List active runs with: hookbus runs list"
    )


def _guard(debug: bool, action: Callable[[], T]) -> T:
    """Run ``action``; turn hookbus's own errors into one clear line and exit code 2."""
    try:
        return action()
    except (HookbusError, ValidationError) as exc:
        _fail(debug, str(exc))
    except redis.RedisError as exc:
        _fail(
            debug,
            f"Redis did not answer ({type(exc).__name__}: {exc}). Check that it runs and that "
            "HOOKBUS_REDIS_URL points at it.",
        )


def _fail(debug: bool, message: str) -> NoReturn:
    if debug:
        raise  # the exception being handled (called from an except block), with its traceback
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(2)
