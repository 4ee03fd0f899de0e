"""Section 6, footprint: ``import engine`` time, a worker's idle RSS, and RSS under load.

The RSS after many events is taken with the worker fed in chunks (at most ``BACKLOG``
events waiting, the stream capped with ``MAXLEN ~``) so that Redis memory stays small,
and each checkpoint is read once the worker has drained everything published so far.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.env import ROOT, BenchEnv, clones, publish_many, rss_mb, wait_until
from bench.locations.noop import feed_sync
from bench.report import Figure, at_most, figure
from bench.stats import median

SECTION = "6 Footprint"
#: At most this many events wait for the worker at any time.
BACKLOG = 20_000
#: The event stream is trimmed to about this many entries (all of them already handled).
MAX_LEN = 100_000
#: Events published per pipeline.
CHUNK = 5_000
#: Events of the warm-up that measures the worker's rate before the real feed.
CALIBRATION = 5_000
IMPORT_SNIPPET = (
    "import time; t = time.perf_counter(); import engine; print(time.perf_counter() - t)"
)


def measure_footprint(
    env: BenchEnv, *, import_trials: int, events: int, budget_s: float
) -> list[Figure]:
    """Import time (median of ``import_trials``), idle RSS, RSS after events/10 and events.

    When a warm-up shows the worker too slow to handle ``events`` within ``budget_s``
    seconds, both checkpoints are scaled down to what fits, and the figure says so.
    """
    _import_engine_s()  # writes the bytecode cache, as any first run after install does
    import_s = median([_import_engine_s() for _ in range(import_trials)])
    stream, payload = env.template(feed_sync, to_state="completed")
    worker = env.start_worker("bench.locations.noop", "footprint")
    time.sleep(1.0)  # let start-up garbage settle before reading the idle size
    idle = rss_mb(worker.pid)
    base = env.hooks_group(stream)["entries-read"] or 0
    # A short warm-up tells how fast the worker goes, so the checkpoints fit the budget.
    warmup = min(CALIBRATION, max(1, events // 10))
    started = time.perf_counter()
    _feed(env, stream, payload, base, warmup)
    rate = warmup / (time.perf_counter() - started)
    wanted = events
    events = max(10, min(events, int(rate * budget_s)))
    small = events // 10
    base += warmup
    started = time.perf_counter()
    _feed(env, stream, payload, base, small)
    rss_small = rss_mb(worker.pid)
    _feed(env, stream, payload, base + small, events - small)
    rss_large = rss_mb(worker.pid)
    rate = events / (time.perf_counter() - started)
    env.stop_workers()
    fed_note = f"fed at {rate:,.0f} events/s"
    if events < wanted:
        fed_note += f"; cut from {wanted:,} to fit the {budget_s:g} s budget"
    growth = (rss_large - rss_small) / rss_small * 100
    return [
        figure(
            SECTION,
            "import engine",
            import_s,
            "s",
            target="≤ 0.3 s",
            check=at_most(0.3),
            note=f"fresh interpreter, bytecode cached, median of {import_trials}",
        ),
        figure(
            SECTION,
            "worker RSS, idle",
            idle,
            "MB",
            target="≤ 60 MB",
            check=at_most(60),
            note="bench.locations.noop loaded",
        ),
        figure(SECTION, f"worker RSS after {small:,} events", rss_small, "MB"),
        figure(
            SECTION,
            f"worker RSS after {events:,} events",
            rss_large,
            "MB",
            note=fed_note,
        ),
        figure(
            SECTION,
            f"RSS growth {small:,} → {events:,} events",
            growth,
            "%",
            target="≤ 10 %",
            check=at_most(10),
        ),
    ]


def _import_engine_s() -> float:
    # Bytecode caching is on whatever the shell says: with PYTHONDONTWRITEBYTECODE set, an
    # editable install compiles every hookbus module again in each run (about 60 ms here),
    # which no installed hookbus does.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_SNIPPET],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out)


def _feed(env: BenchEnv, stream: str, payload: bytes, base: int, count: int) -> None:
    """Publish ``count`` more events, keeping the backlog small; return once all are handled."""
    published = 0
    while published < count:
        group = env.hooks_group(stream)
        handled = (group["entries-read"] or 0) - base - group["pending"]
        room = min(BACKLOG - (published - handled), count - published)
        if room < CHUNK and published + room < count:
            time.sleep(0.005)
            continue
        published += publish_many(env.client, stream, clones(payload, room), max_len=MAX_LEN)
    wait_until(
        lambda: _handled(env, stream, base + count),
        timeout_s=120,
        what=f"the worker to handle {count} events",
        poll_s=0.01,
    )


def _handled(env: BenchEnv, stream: str, target: int) -> bool:
    group = env.hooks_group(stream)
    return bool((group["entries-read"] or 0) >= target and group["pending"] == 0)
