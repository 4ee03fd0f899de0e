"""Section 3, failure-to-hook latency, under a steady background load.

A worker process runs ``bench.locations.alerts``. For each of many runs, a job whose op
raises at once runs in this process; the failure hook and the run failure sensor note
when they start (in the worker), and the benchmark compares that with when the op raised
and with the ``occurred_at`` of the run's ``failed`` event. Meanwhile another process
publishes ``rate`` events per second of a healthy pipeline (op completed, in a job with a
failure hook attached), which the same worker reads, decodes and acks.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime

from bench.env import ROOT, BenchEnv, entries, get_float, wait_until
from bench.floor import Floor
from bench.locations.alerts import RAISED_AT, bench_key, failing, load_unit
from bench.report import Figure, at_most, figure
from bench.stats import percentile
from bus.runs import EVENT_FIELD

SECTION = "3 Failure → hook"
#: How long one hook or sensor may take to start before the benchmark gives up, in seconds.
WAIT_S = 15.0
#: How often the benchmark looks for a handler's start, in seconds. Not faster: each look
#: is a round trip that wakes Redis and this process, taking CPU from the worker being
#: timed on a 2-core machine; the figure is the handler's own timestamp, so a slower look
#: only delays the next run.
POLL_S = 0.005


def measure_latency(env: BenchEnv, floor: Floor, *, runs: int, rate: float) -> list[Figure]:
    """Time ``runs`` failing runs while ``rate`` events/s of background load flow."""
    stream, payload = env.template(load_unit, to_state="completed")
    env.start_worker("bench.locations.alerts", "latency")
    hook_s: list[float] = []
    sensor_s: list[float] = []
    with _background_load(env, stream, payload, rate) as achieved:
        for _ in range(runs):
            hook, sensor = _one_run(env)
            hook_s.append(hook)
            sensor_s.append(sensor)
            if max(hook, sensor) >= WAIT_S:
                break  # the worker fell behind the load; more runs would only wait longer
    env.stop_workers()
    load_note = f"{len(hook_s)} runs; load {achieved[0]:,.0f} events/s"
    if len(hook_s) < runs:
        load_note += f"; stopped: the worker fell behind (a handler waited ≥ {WAIT_S:g} s)"
    wake_p50, wake_p99 = floor.wakeup_p50_s * 1000, floor.wakeup_p99_s * 1000
    return [
        figure(
            SECTION,
            "op raised → failure hook started, p50",
            percentile(hook_s, 50) * 1000,
            "ms",
            target="≤ 2 ms",
            check=at_most(2.0),
            floor=("wake-up p50", wake_p50),
            note=load_note,
        ),
        figure(
            SECTION,
            "op raised → failure hook started, p99",
            percentile(hook_s, 99) * 1000,
            "ms",
            target="≤ 10 ms",
            check=at_most(10.0),
            floor=("wake-up p99", wake_p99),
        ),
        figure(
            SECTION,
            "run failed → run failure sensor started, p50",
            percentile(sensor_s, 50) * 1000,
            "ms",
            floor=("wake-up p50", wake_p50),
        ),
        figure(
            SECTION,
            "run failed → run failure sensor started, p99",
            percentile(sensor_s, 99) * 1000,
            "ms",
            target="≤ 10 ms",
            check=at_most(10.0),
            floor=("wake-up p99", wake_p99),
        ),
    ]


def _one_run(env: BenchEnv) -> tuple[float, float]:
    result = failing.execute_in_process(raise_on_error=False, settings=env.settings)
    raised_at = RAISED_AT[-1]
    run_failed_at = _run_failed_at(env, result.run_id)
    hook_at = _started(env, "hook", result.run_id, raised_at)
    sensor_at = _started(env, "sensor", result.run_id, run_failed_at)
    return hook_at - raised_at, sensor_at - run_failed_at


def _started(env: BenchEnv, kind: str, run_id: str, since: float) -> float:
    """When the handler noted its start, or ``since + WAIT_S`` if it has not started by then."""
    key = bench_key(env.prefix, kind, run_id)
    try:
        return wait_until(
            lambda: get_float(env.client, key),
            timeout_s=WAIT_S,
            what=f"the {kind} of {run_id}",
            poll_s=POLL_S,
        )
    except TimeoutError:
        return since + WAIT_S


def _run_failed_at(env: BenchEnv, run_id: str) -> float:
    stream = env.settings.keys.stream_for_run(run_id)
    for _, fields in entries(env.client.xrevrange(stream, count=500)):
        event = json.loads(fields[EVENT_FIELD])
        if (
            event["type"] == "run"
            and event["to_state"] == "failed"
            and event["run"]["run_id"] == run_id
        ):
            return datetime.fromisoformat(event["occurred_at"]).timestamp()
    raise RuntimeError(f"run {run_id!r} has no 'failed' run event in the last 500 entries.")


@contextlib.contextmanager
def _background_load(
    env: BenchEnv, stream: str, payload: bytes, rate: float
) -> Iterator[list[float]]:
    """Yield a list that holds the achieved rate (events/s) once the load has stopped."""
    achieved: list[float] = []
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.load", env.redis_url, stream, str(rate)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=False,
    )
    try:
        if child.stdin is None or child.stdout is None:
            raise RuntimeError("the load process has no pipes: got None. This is a bug.")
        child.stdin.write(payload)
        child.stdin.close()
        child.stdout.readline()  # "ready"
        yield achieved
    finally:
        child.terminate()
        out = child.stdout.read() if child.stdout else b""
        child.wait(timeout=10)
        sent, elapsed = out.split()
        achieved.append(int(sent) / float(elapsed))
