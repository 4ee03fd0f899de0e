"""Section 4, worker throughput: events/s one and two worker processes dispatch to no-op hooks.

Workers start first (idle, blocked in XREADGROUP): one under one key prefix, two under
another. Then bursts of events, each triggering one no-op hook (sync or async), are
published as fast as Redis takes them, to one set and the other in turn. The rate is taken
from the moment the burst is fully published to the moment the hooks group has read and
acknowledged everything, so the publisher's own CPU use is left out. A short calibration
burst sizes the real ones to last about ``window_s`` seconds.

The benchmark looks at the group every ``POLL_S``: each look costs its own process a
fraction of a millisecond of CPU, taken from the two workers when they share both cores
with Redis, and 10 ms is under 1 % of a burst.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.costs import cpu_bound_ratio, read_cpu
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
    """Rates for 1 and 2 workers × sync and async hooks, each the median of ``trials``.

    One worker and two workers run side by side, each set under its own key prefix (an
    idle worker blocks in XREADGROUP and costs nothing), and their bursts alternate: each
    ratio divides two neighbouring bursts' rates, and the figure is the median ratio. This
    host's speed moves by tens of percent within minutes, so rates taken a minute apart
    (all of one worker's bursts, then all of two's) made a ratio of the host's mood.
    """
    with env.section("one") as one, env.section("two") as two:
        worker = one.start_worker("bench.locations.noop", "throughput-1")
        two.start_worker("bench.locations.noop", "throughput-2a")
        two.start_worker("bench.locations.noop", "throughput-2b")
        figures: list[Figure] = []
        for style, feed in (("sync", feed_sync), ("async", feed_async)):
            setups = [(one, *one.template(feed, to_state="completed"))]
            setups.append((two, *two.template(feed, to_state="completed")))
            bursts = [_calibrate(sub, stream, payload, window_s) for sub, stream, payload in setups]
            pairs = [
                [
                    _burst(sub, stream, payload, burst, worker_pid=pid)
                    for (sub, stream, payload), burst, pid in zip(
                        setups, bursts, (worker.pid, None), strict=True
                    )
                ]
                for _ in range(trials)
            ]
            figures += _rate_figures(style, [(one.rate, two.rate) for one, two in pairs], floor)
            figures += _cpu_figures(style, [one for one, _ in pairs])
    return figures


@dataclass(frozen=True, slots=True)
class Burst:
    """What one burst measured: the rate at which the workers handled it and, when a
    worker's pid was given, the CPU per event (µs) that worker and Redis spent on the
    events handled after publishing ended (so the publisher's XADDs are not counted)."""

    rate: float
    worker_us: float = 0.0
    redis_us: float = 0.0


def _rate_figures(style: str, pairs: list[tuple[float, float]], floor: Floor) -> list[Figure]:
    """The rate rows of one hook style from its (one worker, two workers) rate pairs."""
    note = f"median of {len(pairs)}, alternating"
    return [
        figure(
            SECTION,
            f"1 worker, {style} no-op hooks",
            median([one for one, _ in pairs]),
            "events/s",
            target="≥ 20,000 events/s",
            check=at_least(20_000),
            floor=("XREADGROUP+XACK", floor.read_ack_per_s),
            note=note,
        ),
        figure(
            SECTION,
            f"2 workers, {style} no-op hooks",
            median([two for _, two in pairs]),
            "events/s",
            floor=("XREADGROUP+XACK", floor.read_ack_per_s),
            note=note,
        ),
        figure(
            SECTION,
            f"2 workers ÷ 1 worker, {style}",
            median([two / one for one, two in pairs]),
            "×",
            target="≥ 1.6×",
            check=at_least(1.6),
            note=f"median of {len(pairs)} neighbouring pairs; 2 cores shared with Redis",
        ),
    ]


def _cpu_figures(style: str, bursts: list[Burst]) -> list[Figure]:
    """One worker's and Redis's CPU per event over the one-worker bursts, and the ratio
    they imply (``bench.costs.cpu_bound_ratio``)."""
    worker_us = median([burst.worker_us for burst in bursts])
    redis_us = median([burst.redis_us for burst in bursts])
    note = f"median of {len(bursts)} one-worker bursts, after their publishing"
    return [
        figure(SECTION, f"1 worker's CPU per event, {style}", worker_us, "µs", note=note),
        figure(SECTION, f"Redis's CPU per event, {style}", redis_us, "µs", note=note),
        figure(
            SECTION,
            f"2 workers ÷ 1 if CPU-bound, {style}",
            cpu_bound_ratio(worker_us, redis_us),
            "×",
            note="2W / (W + R): two workers and Redis sharing the 2 cores, W as measured alone",
        ),
    ]


def _calibrate(env: BenchEnv, stream: str, payload: bytes, window_s: float) -> int:
    rate = _burst(env, stream, payload, MIN_BURST).rate
    return int(min(MAX_BURST, max(MIN_BURST, rate * window_s)))


def _burst(
    env: BenchEnv, stream: str, payload: bytes, count: int, *, worker_pid: int | None = None
) -> Burst:
    """Publish ``count`` events at once; measure how the workers handled them."""
    bodies = list(clones(payload, count))
    before = env.hooks_group(stream)["entries-read"] or 0
    publish_many(env.client, stream, bodies)
    published_at = time.perf_counter()
    cpu_then = None if worker_pid is None else read_cpu(env.client, worker_pid)
    group = env.hooks_group(stream)
    left = max(count - (int(group["entries-read"] or 0) - before - int(group["pending"])), 1)
    wait_until(
        lambda: _drained(env, stream, before + count),
        timeout_s=max(60.0, count / 1000),
        what=f"workers to handle {count} events",
        poll_s=POLL_S,
    )
    rate = left / (time.perf_counter() - published_at)
    if worker_pid is None or cpu_then is None:
        return Burst(rate)
    cpu = read_cpu(env.client, worker_pid)
    worker_us = (cpu.worker_s - cpu_then.worker_s) / left * 1e6
    return Burst(rate, worker_us, (cpu.redis_s - cpu_then.redis_s) / left * 1e6)


def _drained(env: BenchEnv, stream: str, target: int) -> bool:
    group = env.hooks_group(stream)
    return bool((group["entries-read"] or 0) >= target and group["pending"] == 0)
