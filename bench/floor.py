"""Section 1, the Redis floor: what the bus itself costs on this machine, right now.

Every other figure is reported as a ratio to one of these, measured in the same run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass

from bench.env import ROOT, BenchEnv, clones, publish_many, read_entries
from bench.report import Figure, figure
from bench.stats import median, percentile
from bus.runs import EVENT_FIELD

SECTION = "1 Redis floor"


@dataclass(frozen=True, slots=True)
class Floor:
    """The floor figures other sections compare with (seconds and per second)."""

    xadd_p50_s: float
    xadd_p99_s: float
    pipelined_xadd_per_s: float
    read_ack_per_s: float
    wakeup_p50_s: float
    wakeup_p99_s: float


def measure_floor(
    env: BenchEnv, payload: bytes, *, samples: int, bulk: int, trials: int
) -> tuple[Floor, list[Figure]]:
    """Measure the floor with ``payload`` (a real event) as the entry body."""
    round_trips = _xadd_round_trips(env, payload, samples)
    pipelined = median([_pipelined_xadd(env, payload, bulk) for _ in range(trials)])
    read_ack = median([_read_ack(env, payload, bulk) for _ in range(trials)])
    wakeups = _wakeups(env, samples=min(samples, 500))
    floor = Floor(
        xadd_p50_s=percentile(round_trips, 50),
        xadd_p99_s=percentile(round_trips, 99),
        pipelined_xadd_per_s=pipelined,
        read_ack_per_s=read_ack,
        wakeup_p50_s=percentile(wakeups, 50),
        wakeup_p99_s=percentile(wakeups, 99),
    )
    size = f"{len(payload)}-byte event"
    figures = [
        figure(SECTION, "XADD round trip p50", floor.xadd_p50_s * 1000, "ms", note=size),
        figure(SECTION, "XADD round trip p99", floor.xadd_p99_s * 1000, "ms"),
        figure(SECTION, "pipelined XADD", pipelined, "events/s", note="batches of 1,000"),
        figure(
            SECTION, "XREADGROUP + XACK", read_ack, "events/s", note="COUNT 64, one XACK a batch"
        ),
        figure(SECTION, "wake-up XADD → XREADGROUP p50", floor.wakeup_p50_s * 1000, "ms"),
        figure(
            SECTION,
            "wake-up XADD → XREADGROUP p99",
            floor.wakeup_p99_s * 1000,
            "ms",
            note="another process blocked in XREADGROUP",
        ),
    ]
    return floor, figures


def _stream(env: BenchEnv, name: str) -> str:
    return f"{env.prefix}:floor:{name}"


def _xadd_round_trips(env: BenchEnv, payload: bytes, samples: int) -> list[float]:
    stream = _stream(env, "rtt")
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        env.client.xadd(stream, {EVENT_FIELD: payload})
        timings.append(time.perf_counter() - started)
    env.client.delete(stream)
    return timings


def _pipelined_xadd(env: BenchEnv, payload: bytes, count: int) -> float:
    stream = _stream(env, "bulk")
    bodies = list(clones(payload, count))
    started = time.perf_counter()
    publish_many(env.client, stream, bodies)
    elapsed = time.perf_counter() - started
    env.client.delete(stream)
    return count / elapsed


def _read_ack(env: BenchEnv, payload: bytes, count: int) -> float:
    stream = _stream(env, "read")
    env.client.xgroup_create(stream, "floor", id="0", mkstream=True)
    publish_many(env.client, stream, clones(payload, count))
    done = 0
    started = time.perf_counter()
    while done < count:
        reply = env.client.xreadgroup("floor", "c", {stream: ">"}, count=64)
        for _, batch in read_entries(reply):
            env.client.xack(stream, "floor", *[entry_id for entry_id, _ in batch])
            done += len(batch)
    elapsed = time.perf_counter() - started
    env.client.delete(stream)
    return count / elapsed


def _wakeups(env: BenchEnv, *, samples: int) -> list[float]:
    stream = _stream(env, "wakeup")
    env.client.xgroup_create(stream, "wakeup", id="$", mkstream=True)
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.wakeup", env.redis_url, stream, "wakeup"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        if child.stdout is None:
            raise RuntimeError("the wake-up reader has no stdout: got None. This is a bug.")
        child.stdout.readline()  # "ready"
        time.sleep(0.05)  # let it enter XREADGROUP
        for _ in range(samples):
            env.client.xadd(stream, {b"t": repr(time.time())})
            time.sleep(0.002)  # each entry wakes a blocked reader, not a busy one
        env.client.xadd(stream, {b"stop": b"1"})
        latencies: list[float] = json.loads(child.stdout.readline())
    finally:
        child.wait(timeout=10)
        env.client.delete(stream)
    return latencies
