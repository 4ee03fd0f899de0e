"""Instructions a worker spends per event: a measure that does not move with the machine.

``python -m bench.instructions [--style sync|async] [--events N] [--redis-url URL]``

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

from bench.env import BenchEnv, clones, publish_many
from bench.locations.noop import feed_async, feed_sync
from sensors import CodeLocation, Worker, WorkerSettings
from sensors.runner import tune_garbage_collector

#: Set in the child that valgrind runs: switch counting on around the measured call.
COUNTING_ENV = "HOOKBUS_BENCH_CALLGRIND"
#: Events handled before counting starts (imports, first connections, first groups).
WARM_UP = 200


def handle_events(redis_url: str, style: str, events: int) -> float:
    """Handle ``events`` copies of the benchmark event in one ``run_until_idle``; return
    the seconds it took (counted by callgrind when ``COUNTING_ENV`` is set)."""
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
        return asyncio.run(_timed_burst(env, settings, stream, payload, events))
    finally:
        env.close()


async def _timed_burst(
    env: BenchEnv, settings: WorkerSettings, stream: str, payload: bytes, events: int
) -> float:
    worker = Worker(CodeLocation.load("bench.locations.noop"), settings, env={})
    try:
        await worker.run_until_idle()  # creates the groups
        publish_many(env.client, stream, list(clones(payload, WARM_UP)))
        await worker.run_until_idle()
        publish_many(env.client, stream, list(clones(payload, events)))
        tune_garbage_collector()
        counting = bool(os.environ.get(COUNTING_ENV))
        if counting:
            _callgrind_control("on")
        started = time.perf_counter()
        handled = await worker.run_until_idle()
        elapsed = time.perf_counter() - started
        if counting:
            _callgrind_control("off")
    finally:
        await worker.close()
    if handled != events:
        raise RuntimeError(f"the worker handled {handled} of {events} events: expected all.")
    return elapsed


def _callgrind_control(switch: str) -> None:
    subprocess.run(
        ["callgrind_control", "-i", switch, str(os.getpid())], check=True, capture_output=True
    )


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
        totals = [
            int(line.split()[1])
            for dump in Path(out).glob("callgrind.*")
            for line in dump.read_text().splitlines()
            # ``summary`` counts from the start, ``totals`` while counting was on.
            if line.startswith("totals:")
        ]
    if not totals:
        raise RuntimeError("callgrind wrote no totals: was counting switched on?")
    return sum(totals) / events


@click.command(help="Count the instructions a worker spends per event (callgrind).")
@click.option("--style", type=click.Choice(["sync", "async"]), default="sync", show_default=True)
@click.option("--events", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--redis-url", default="redis://127.0.0.1:6379/0", show_default=True)
@click.option("--no-callgrind", is_flag=True, help="Run in this process and print the rate.")
def main(style: str, events: int, redis_url: str, no_callgrind: bool) -> None:
    if no_callgrind or shutil.which("valgrind") is None:
        elapsed = handle_events(redis_url, style, events)
        click.echo(f"{style}: {events} events in {elapsed:.3f} s, {events / elapsed:,.0f} events/s")
        return
    per_event = count_instructions(redis_url, style, events)
    click.echo(f"{style}: {per_event / 1000:,.1f}k instructions an event ({events} events)")


if __name__ == "__main__":
    main()
