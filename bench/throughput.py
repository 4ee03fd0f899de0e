"""Section 4, worker throughput: events/s one and two worker processes dispatch to no-op hooks.

Workers start first (idle, blocked in XREADGROUP); then a burst of events, each triggering
one no-op hook (sync or async), is published as fast as Redis takes it. The rate is taken
from the moment the burst is fully published to the moment the hooks group has read and
acknowledged everything, so the publisher's own CPU use is left out. A short calibration
burst sizes the real ones to last about ``window_s`` seconds.

The benchmark looks at the group every ``POLL_S``: each look costs its own process a
fraction of a millisecond of CPU, taken from the two workers when they share both cores
with Redis, and 10 ms is under 1 % of a burst.
"""

from __future__ import annotations

import time

from bench.env import BenchEnv, clones, publish_many, wait_until
from bench.floor import Floor
from bench.locations.noop import feed_async, feed_sync
from bench.report import Figure, at_least, figure
from bench.stats import median

SECTION = "4 Worker throughput"
#: The smallest and largest burst, in events.
MIN_BURST = 500
MAX_BURST = 200_000
#: How often the benchmark asks Redis whether the burst is handled, in seconds.
POLL_S = 0.01


def measure_throughput(
    env: BenchEnv, floor: Floor, *, trials: int, window_s: float
) -> list[Figure]:
    """Rates for 1 and 2 workers × sync and async hooks, each the median of ``trials``."""
    templates = {
        "sync": env.template(feed_sync, to_state="completed"),
        "async": env.template(feed_async, to_state="completed"),
    }
    rates: dict[tuple[int, str], float] = {}
    for workers in (1, 2):
        env.start_worker("bench.locations.noop", f"throughput-{workers}")
        for style, (stream, payload) in templates.items():
            burst = _calibrate(env, stream, payload, window_s)
            rates[workers, style] = median(
                [_burst_rate(env, stream, payload, burst) for _ in range(trials)]
            )
    env.stop_workers()
    figures = []
    for style in ("sync", "async"):
        one, two = rates[1, style], rates[2, style]
        figures += [
            figure(
                SECTION,
                f"1 worker, {style} no-op hooks",
                one,
                "events/s",
                target="≥ 20,000 events/s",
                check=at_least(20_000),
                floor=("XREADGROUP+XACK", floor.read_ack_per_s),
                note=f"median of {trials}",
            ),
            figure(
                SECTION,
                f"2 workers, {style} no-op hooks",
                two,
                "events/s",
                floor=("XREADGROUP+XACK", floor.read_ack_per_s),
            ),
            figure(
                SECTION,
                f"2 workers ÷ 1 worker, {style}",
                two / one,
                "×",
                target="≥ 1.6×",
                check=at_least(1.6),
                note="2 cores, shared with Redis and the publisher",
            ),
        ]
    return figures


def _calibrate(env: BenchEnv, stream: str, payload: bytes, window_s: float) -> int:
    rate = _burst_rate(env, stream, payload, MIN_BURST)
    return int(min(MAX_BURST, max(MIN_BURST, rate * window_s)))


def _burst_rate(env: BenchEnv, stream: str, payload: bytes, count: int) -> float:
    """Publish ``count`` events at once; return the rate the workers handled them at."""
    bodies = list(clones(payload, count))
    before = env.hooks_group(stream)["entries-read"] or 0
    publish_many(env.client, stream, bodies)
    published_at = time.perf_counter()
    group = env.hooks_group(stream)
    handled_then = int(group["entries-read"] or 0) - before - int(group["pending"])
    wait_until(
        lambda: _drained(env, stream, before + count),
        timeout_s=max(60.0, count / 1000),
        what=f"workers to handle {count} events",
        poll_s=POLL_S,
    )
    elapsed = time.perf_counter() - published_at
    return max(count - handled_then, 1) / elapsed


def _drained(env: BenchEnv, stream: str, target: int) -> bool:
    group = env.hooks_group(stream)
    return bool((group["entries-read"] or 0) >= target and group["pending"] == 0)
