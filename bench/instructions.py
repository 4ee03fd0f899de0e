"""Instructions a worker spends per event: a measure that does not move with the machine.

``python -m bench.instructions [--style sync|async] [--events N] [--redis-url URL] [--server]``

On this 2-core machine the same code's throughput moved by 50 % within minutes, more than
most changes to the worker are worth. Callgrind counts instructions instead, and gives the
same count for the same tree to within 0.3 % whatever else the machine is doing.

It runs a ``Worker`` for ``bench.locations.noop`` in this process, with the worker
process's garbage-collector settings (``sensors.runner.tune_garbage_collector``), over
``--events`` copies of the throughput benchmark's event, and counts only its
``run_until_idle()`` call: the command starts itself again under ``valgrind --tool=callgrind``
with counting off, and the child switches it on and off around that call
(``callgrind_control -i on|off``). Without valgrind installed (or with ``--no-callgrind``)
it prints the in-process rate instead. See "Profiling" in ``docs/performance.md``.

With ``--server`` it counts the other side instead: a private ``redis-server`` started under
callgrind (counting switched on and off around the same call), so Redis's share of each
event, the noisiest figure of the throughput section, is measured without the noise.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import redis

from bench.env import BenchEnv, clones, publish_many
from bench.locations.noop import feed_async, feed_sync
from bus.redis_server import find_redis_server, free_port
from sensors import CodeLocation, Worker, WorkerSettings
from sensors.runner import tune_garbage_collector

#: Set in the child that valgrind runs: switch counting on around the measured call.
COUNTING_ENV = "HOOKBUS_BENCH_CALLGRIND"
#: Events handled before counting starts (imports, first connections, first groups).
WARM_UP = 200


def handle_events(
    redis_url: str, style: str, events: int, *, counted_pid: int | None = None
) -> float:
    """Handle ``events`` copies of the benchmark event in one ``run_until_idle``; return
    the seconds it took. Callgrind counts that call in process ``counted_pid`` (this one,
    or the Redis server), if given."""
    env = BenchEnv(redis_url)
    try:
        stream, payload = env.template(
            feed_sync if style == "sync" else feed_async, to_state="completed"
        )
        settings = WorkerSettings(
            redis_url=redis_url,
            key_prefix=env.prefix,
            consumer_name="instructions",
            idempotency_ttl_s=60,
        )
        return asyncio.run(_timed_burst(env, settings, stream, payload, events, counted_pid))
    finally:
        env.close()


async def _timed_burst(
    env: BenchEnv,
    settings: WorkerSettings,
    stream: str,
    payload: bytes,
    events: int,
    counted_pid: int | None,
) -> float:
    worker = Worker(CodeLocation.load("bench.locations.noop"), settings, env={})
    try:
        await worker.run_until_idle()  # creates the groups
        publish_many(env.client, stream, list(clones(payload, WARM_UP)))
        await worker.run_until_idle()
        publish_many(env.client, stream, list(clones(payload, events)))
        tune_garbage_collector()
        if counted_pid is not None:
            _callgrind_control("on", counted_pid)
        started = time.perf_counter()
        handled = await worker.run_until_idle()
        elapsed = time.perf_counter() - started
        if counted_pid is not None:
            _callgrind_control("off", counted_pid)
    finally:
        await worker.close()
    if handled != events:
        raise RuntimeError(f"the worker handled {handled} of {events} events: expected all.")
    return elapsed


def _callgrind_control(switch: str, pid: int) -> None:
    subprocess.run(["callgrind_control", "-i", switch, str(pid)], check=True, capture_output=True)


def count_instructions(redis_url: str, style: str, events: int) -> float:
    """Instructions per event, from a child run under callgrind."""
    with tempfile.TemporaryDirectory(prefix="hookbus-callgrind-") as out:
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}/callgrind.%p",
            sys.executable,
            "-m",
            "bench.instructions",
            "--no-callgrind",
            f"--style={style}",
            f"--events={events}",
            f"--redis-url={redis_url}",
        ]
        child = subprocess.run(
            command, env={**os.environ, COUNTING_ENV: "1"}, capture_output=True, text=True
        )
        if child.returncode != 0:
            raise RuntimeError(
                f"the callgrind run failed with code {child.returncode}: "
                f"{child.stderr.strip()[-2000:]}"
            )
        return _totals(Path(out)) / events


def count_server_instructions(style: str, events: int) -> float:
    """Instructions per event that a private ``redis-server``, run under callgrind, spends
    while a worker in this process handles the events (their publishing not counted):
    Redis's share of each event, which no other process's load on the machine moves."""
    with tempfile.TemporaryDirectory(prefix="hookbus-callgrind-") as out:
        port = free_port()
        server = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}/callgrind.%p",
                find_redis_server(),
                *("--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"redis://127.0.0.1:{port}/0"
            _wait_for(url)
            handle_events(url, style, events, counted_pid=server.pid)
        finally:
            server.terminate()  # callgrind writes its counts as the server exits
            server.wait(timeout=60)
        return _totals(Path(out)) / events


def _wait_for(url: str, timeout_s: float = 60.0) -> None:
    """Until the server at ``url`` answers (under valgrind it takes seconds to start)."""
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.ping()
            client.close()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _totals(out: Path) -> int:
    """Instructions counted while counting was on, over every callgrind file in ``out``."""
    totals = [
        int(line.split()[1])
        for dump in out.glob("callgrind.*")
        for line in dump.read_text().splitlines()
        # ``summary`` counts from the start, ``totals`` while counting was on.
        if line.startswith("totals:")
    ]
    if not totals:
        raise RuntimeError("callgrind wrote no totals: was counting switched on?")
    return sum(totals)


@click.command(help="Count the instructions a worker spends per event (callgrind).")
@click.option("--style", type=click.Choice(["sync", "async"]), default="sync", show_default=True)
@click.option("--events", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--redis-url", default="redis://127.0.0.1:6379/0", show_default=True)
@click.option("--no-callgrind", is_flag=True, help="Run in this process and print the rate.")
@click.option(
    "--server",
    is_flag=True,
    help="Count a private redis-server's instructions instead of the worker's.",
)
def main(style: str, events: int, redis_url: str, no_callgrind: bool, server: bool) -> None:
    if no_callgrind or shutil.which("valgrind") is None:
        counted = os.getpid() if os.environ.get(COUNTING_ENV) else None
        elapsed = handle_events(redis_url, style, events, counted_pid=counted)
        click.echo(f"{style}: {events} events in {elapsed:.3f} s, {events / elapsed:,.0f} events/s")
        return
    if server:
        per_event = count_server_instructions(style, events)
        click.echo(
            f"{style}: Redis {per_event / 1000:,.1f}k instructions an event ({events} events)"
        )
        return
    per_event = count_instructions(redis_url, style, events)
    click.echo(f"{style}: {per_event / 1000:,.1f}k instructions an event ({events} events)")


if __name__ == "__main__":
    main()
