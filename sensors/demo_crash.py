"""``hookbus demo``, scene 2: a job's process is SIGKILLed mid-op; the alert goes out anyway.

``hookbus run`` runs the example job ``hourly_load`` in a child process it supervises. The
demo waits until the op ``load_warehouse`` runs (the run record in Redis says so), kills
the child with SIGKILL — nothing in it can react — and times how long the supervisor took
to publish the crash and the worker to start the run failure sensor and the job's
``on_crashed`` hook.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TypeVar, cast

import redis
from rich.console import Console

from bus.children import interrupts_held
from bus.events import RunEvent, decode_event, utc_now
from bus.ledger import find_record
from bus.runs import EVENT_FIELD, RunRecord
from bus.settings import BusSettings

#: The supervised job and the op it is killed in.
CRASH_JOB = "hourly_load"
CRASH_OP = "load_warehouse"

T = TypeVar("T")
# XRANGE's reply without decode_responses.
Entry = tuple[bytes, dict[bytes, bytes]]


def run_crash_scene(
    client: redis.Redis,
    settings: BusSettings,
    *,
    location: str,
    root: Path,
    env: Mapping[str, str],
    console: Console,
    timeout_s: float,
) -> None:
    """Run scene 2 against the worker already started for ``location``; print the timings."""
    console.print(
        f"\n[bold]Scene 2[/]: [bold]hookbus run {location} {CRASH_JOB}[/] — its process is "
        f"killed with SIGKILL in the middle of op [bold]{CRASH_OP}[/]…"
    )
    with tempfile.TemporaryDirectory(prefix="hookbus-demo-spool-") as spool:
        parent: subprocess.Popen[bytes] | None = None
        try:
            with interrupts_held():  # a Ctrl-C right now is raised once ``parent`` is set
                parent = subprocess.Popen(
                    [sys.executable, "-m", "sensors", "run", location, CRASH_JOB],
                    env={**env, "HOOKBUS_SPOOL_DIR": spool, "PYTHONUNBUFFERED": "1"},
                    cwd=root,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            record = _poll(lambda: _running_record(client, settings), timeout_s, "the op to run")
            if record.pid is None:
                raise RuntimeError(f"run {record.run.run_id} has no pid in its record")
            os.kill(record.pid, signal.SIGKILL)
            killed_at = utc_now()
            console.print(f"Killed process {record.pid} (run {record.run.run_id}) with SIGKILL.")
            parent.wait(timeout=timeout_s)
        finally:
            if parent is not None and parent.poll() is None:
                parent.kill()
                parent.wait()
    crashed = _poll(lambda: _crashed_event(client, settings, record), timeout_s, "the crash")
    _report(client, settings, crashed, killed_at, console=console, timeout_s=timeout_s)


def _report(
    client: redis.Redis,
    settings: BusSettings,
    crashed: RunEvent,
    killed_at: datetime,
    *,
    console: Console,
    timeout_s: float,
) -> None:
    hook_name = next(hook.name for hook in crashed.hooks_triggered())
    hook_ref = next(hook.ref for hook in crashed.hooks_triggered())
    sensor_start = _poll(
        lambda: _handler_start(client, settings, crashed, "sensor:report_failed_run"),
        timeout_s,
        "the run failure sensor",
    )
    hook_start = _poll(
        lambda: _handler_start(client, settings, crashed, f"hook:{hook_ref}"),
        timeout_s,
        "the on_crashed hook",
    )
    time.sleep(0.2)  # let the worker's output reach the screen before the summary
    detected_by = crashed.crash.detected_by if crashed.crash else "?"
    console.print(
        f"\n[bold green]✓[/] crash published by the {detected_by} "
        f"[bold]{_ms(crashed.occurred_at, killed_at):.1f} ms[/] after the kill "
        f"({crashed.message});\n"
        f"[bold green]✓[/] run failure sensor [bold]report_failed_run[/] started in the worker "
        f"[bold]{_ms(sensor_start, killed_at):.1f} ms[/] after the kill;\n"
        f"[bold green]✓[/] on_crashed hook [bold]{hook_name}[/] started "
        f"[bold]{_ms(hook_start, killed_at):.1f} ms[/] after the kill."
    )


def _running_record(client: redis.Redis, settings: BusSettings) -> RunRecord | None:
    for alive in settings.keys.all_runs_alive():
        for raw_id in cast(list[bytes], client.zrange(alive, 0, -1)):
            fields = client.hgetall(settings.keys.run_record(raw_id.decode()))
            record = RunRecord.from_hash(cast(dict[bytes, bytes], fields))
            if record is not None and CRASH_OP in record.running:
                return record
    return None


def _crashed_event(
    client: redis.Redis, settings: BusSettings, record: RunRecord
) -> RunEvent | None:
    run_id = record.run.run_id
    entries = cast(list[Entry], client.xrange(settings.keys.stream_for_run(run_id)))
    for _, fields in entries:
        event = decode_event(fields[EVENT_FIELD])
        if isinstance(event, RunEvent) and event.run_id == run_id and event.to_state == "crashed":
            return event
    return None


def _handler_start(
    client: redis.Redis, settings: BusSettings, event: RunEvent, handler: str
) -> datetime | None:
    record = find_record(client, settings.keys, event.event_id, handler, since=event.occurred_at)
    return None if record is None else record.started_at


def _poll(check: Callable[[], T | None], timeout_s: float, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    while (value := check()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the demo waited {timeout_s}s for {what}")
        time.sleep(0.01)
    return value


def _ms(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() * 1000
