"""``hookbus demo``: a worker process, a failing job, and the alert it produced, timed.

Scene 2 (``sensors.demo_crash``) SIGKILLs a supervised job in the middle of an op and
times the crash alert the worker sends anyway.

The demo is self-contained and leaves nothing behind: it uses its own key prefix (deleted
at the end), starts a private Redis when none answers (stopped at the end), and stops its
worker process — also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO

import redis
from rich.console import Console

from bus.children import interrupts_held, stop_child
from bus.connection import connect, redacted_url
from bus.events import CheckEvent, OpEvent, RunEvent, decode_event
from bus.ledger import find_record
from bus.publisher import EVENT_FIELD
from bus.redis_server import RedisServer
from bus.settings import BusSettings
from engine.job import JobDefinition
from engine.settings import EngineSettings
from sensors.demo_crash import run_crash_scene
from sensors.hooks import HookDefinition
from sensors.run_status import SensorDefinition

#: The example code location the demo runs.
DEMO_LOCATION = "examples.nightly_etl"
#: How long to wait for the worker to start and for the alert to arrive, in seconds.
DEMO_TIMEOUT_S = 30.0

console = Console(highlight=False, soft_wrap=True)


def run_demo(settings: BusSettings, *, env: Mapping[str, str], crash_scene: bool = True) -> int:
    """Run the demo against ``settings.redis_url`` (or a private Redis); return an exit code.

    Args:
        crash_scene: also run scene 2 (``sensors.demo_crash``).
    """
    with _redis_for(settings) as redis_url:
        prefix = f"hookbus-demo-{uuid.uuid4().hex[:8]}"
        demo_settings = EngineSettings(redis_url=redis_url, key_prefix=prefix)
        client = connect(demo_settings)
        try:
            with _worker_process(redis_url, prefix, env) as worker:
                _wait_for_worker(client, demo_settings, worker)
                code = _run_example(client, demo_settings)
                if not crash_scene:
                    return code
                run_crash_scene(
                    client,
                    demo_settings,
                    location=DEMO_LOCATION,
                    root=_project_root(),
                    env=_child_env(redis_url, prefix, env),
                    console=console,
                    timeout_s=DEMO_TIMEOUT_S,
                )
                return code
        finally:
            _delete_keys(client, prefix)
            client.close()


@contextlib.contextmanager
def _redis_for(settings: BusSettings) -> Iterator[str]:
    probe = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=0.5)
    try:
        probe.ping()
        console.print(f"[dim]Using the Redis at {redacted_url(settings.redis_url)}.[/]")
        yield settings.redis_url
        return
    except redis.RedisError:
        pass
    finally:
        probe.close()
    with RedisServer() as server:
        console.print(
            f"[yellow]No Redis answers at {redacted_url(settings.redis_url)}; started a private "
            f"one ({server.binary}) on port {server.port} for this demo. "
            "It stops when the demo ends.[/]"
        )
        yield server.url


@contextlib.contextmanager
def _worker_process(
    redis_url: str, prefix: str, env: Mapping[str, str]
) -> Iterator[subprocess.Popen[str]]:
    root = _project_root()
    child_env = {**_child_env(redis_url, prefix, env), "HOOKBUS_CONSUMER_NAME": "demo-worker"}
    console.print(f"Starting a worker process: [bold]hookbus worker {DEMO_LOCATION}[/]")
    worker: subprocess.Popen[str] | None = None
    echo: threading.Thread | None = None
    try:
        with interrupts_held():  # a Ctrl-C right now is raised once ``worker`` is set
            worker = subprocess.Popen(
                [sys.executable, "-m", "sensors", "worker", DEMO_LOCATION],
                env=child_env,
                cwd=root,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        echo = threading.Thread(target=_echo, args=(worker.stdout,), daemon=True)
        echo.start()
        yield worker
    finally:
        if worker is not None:
            stop_child(worker)
        if echo is not None:
            echo.join(timeout=2)


def _child_env(redis_url: str, prefix: str, env: Mapping[str, str]) -> dict[str, str]:
    """The environment of the demo's child processes (worker, supervised run)."""
    root = _project_root()
    return {
        **env,
        "HOOKBUS_REDIS_URL": redis_url,
        "HOOKBUS_KEY_PREFIX": prefix,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH", "")])),
        "PYTHONUNBUFFERED": "1",
    }


def _echo(stream: IO[str] | None) -> None:
    for line in stream or ():
        console.print(f"[dim]  worker │[/] {line.rstrip()}", markup=True, highlight=False)


def _project_root() -> Path:
    # The examples live next to the packages in a checkout (editable install).
    here = Path(__file__).resolve().parents[1]
    return here if (here / "examples").is_dir() else Path.cwd()


def _wait_for_worker(
    client: redis.Redis, settings: BusSettings, worker: subprocess.Popen[str]
) -> None:
    key = settings.keys.worker_heartbeat("demo-worker")
    deadline = time.monotonic() + DEMO_TIMEOUT_S
    while not client.exists(key):
        if worker.poll() is not None:
            raise RuntimeError(
                f"the demo worker exited with code {worker.returncode}; see its output above"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"the demo worker did not become ready within {DEMO_TIMEOUT_S}s")
        time.sleep(0.05)


def _run_example(client: redis.Redis, settings: EngineSettings) -> int:
    root = str(_project_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    example = importlib.import_module(DEMO_LOCATION)
    nightly_etl: JobDefinition = example.nightly_etl
    slack_on_failure: HookDefinition = example.slack_on_failure
    report_failed_run: SensorDefinition = example.report_failed_run
    console.print(
        "Running job [bold]nightly_etl[/] in this process (its op [bold]transform[/] fails)…"
    )
    result = nightly_etl.execute_in_process(raise_on_error=False, settings=settings)
    console.print(
        f"Run {result.run_id} ended [bold red]{result.state}[/]; waiting for the worker's alerts…"
    )
    events = _run_events(client, settings, result.run_id)
    op_failed = next(e for e in events if isinstance(e, OpEvent) and e.to_state == "failed")
    run_failed = next(e for e in events if isinstance(e, RunEvent) and e.to_state == "failed")
    hook_start = _wait_for_handler(client, settings, op_failed, f"hook:{slack_on_failure.ref}")
    sensor_start = _wait_for_handler(
        client, settings, run_failed, f"sensor:{report_failed_run.name}"
    )
    time.sleep(0.2)  # let the worker's output reach the screen before the summary
    console.print(
        f"\n[bold green]✓[/] failure hook [bold]{slack_on_failure.name}[/] started in the worker "
        f"[bold]{_ms(hook_start, op_failed.occurred_at):.1f} ms[/] after the op raised;\n"
        f"[bold green]✓[/] run failure sensor [bold]{report_failed_run.name}[/] started "
        f"[bold]{_ms(sensor_start, run_failed.occurred_at):.1f} ms[/] after the run failed."
    )
    return 0


def _run_events(
    client: redis.Redis, settings: BusSettings, run_id: str
) -> list[RunEvent | OpEvent]:
    entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(  # type: ignore[assignment]
        settings.keys.stream_for_run(run_id)
    )
    events = [decode_event(fields[EVENT_FIELD]) for _, fields in entries]
    return [
        event for event in events if not isinstance(event, CheckEvent) and event.run_id == run_id
    ]


def _wait_for_handler(
    client: redis.Redis, settings: BusSettings, event: OpEvent | RunEvent, handler: str
) -> datetime:
    deadline = time.monotonic() + DEMO_TIMEOUT_S
    while (
        record := find_record(
            client, settings.keys, event.event_id, handler, since=event.occurred_at
        )
    ) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{handler} did not run for event {event.event_id} within {DEMO_TIMEOUT_S}s"
            )
        time.sleep(0.01)
    return record.started_at


def _ms(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() * 1000


def _delete_keys(client: redis.Redis, prefix: str) -> None:
    for key in client.scan_iter(match=f"*{prefix}*", count=500):
        client.delete(key)
