"""Section 5, crash detection: SIGKILL of a job's process → its ``on_crashed`` hook started.

``hookbus run bench.locations.alerts killed`` runs a job whose op notes its process id and
waits. Two ways to die are timed:

* only the job's process is killed (the op's pid): a supervising ``hookbus run`` that
  survives should publish the crash at once;
* the whole process group is killed: nothing is left to publish, so a worker must notice
  the run's heartbeat stopping (``HOOKBUS_HEARTBEAT_TIMEOUT_S``).

A run that is merely slow (longer than the heartbeat timeout) must not be called crashed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from bench.env import ROOT, BenchEnv, get_float, wait_until
from bench.locations.alerts import bench_key
from bench.report import Figure, at_most, figure
from bench.stats import percentile
from sensors.settings import WorkerSettings

SECTION = "5 Crash detection"


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The heartbeat settings the crash benchmark uses (engine and worker alike).

    The worker looks for lost runs every ``check_interval_s`` (its
    ``HOOKBUS_CRASH_CHECK_INTERVAL_S``; by default the worker's own default).
    """

    interval_s: float = 0.5
    timeout_s: float = 2.0
    check_interval_s: float = WorkerSettings.model_fields["crash_check_interval_s"].default

    def env(self) -> dict[str, str]:
        return {
            "HOOKBUS_HEARTBEAT_INTERVAL_S": str(self.interval_s),
            "HOOKBUS_HEARTBEAT_TIMEOUT_S": str(self.timeout_s),
            "HOOKBUS_CRASH_CHECK_INTERVAL_S": str(self.check_interval_s),
        }

    def __str__(self) -> str:
        return (
            f"heartbeat interval {self.interval_s:g} s, timeout {self.timeout_s:g} s, "
            f"worker check every {self.check_interval_s:g} s"
        )


def measure_crash(
    env: BenchEnv, *, samples: int, heartbeat: Heartbeat, grace_s: float
) -> list[Figure]:
    """Time both ways to die ``samples`` times each, and check a slow run.

    A way of dying whose ``on_crashed`` hook has not started ``grace_s`` seconds after the
    kill (after the heartbeat timeout, for the heartbeat path) is reported as not detected.
    """
    env.start_worker("bench.locations.alerts", "crash", extra_env=heartbeat.env())
    child_wait_s = grace_s
    group_wait_s = heartbeat.timeout_s + grace_s
    child_only = _series(env, heartbeat, samples=samples, whole_group=False, wait_s=child_wait_s)
    whole_group = _series(env, heartbeat, samples=samples, whole_group=True, wait_s=group_wait_s)
    false_crash = _slow_run_called_crashed(env, heartbeat)
    env.stop_workers()
    hb_note = str(heartbeat)
    return [
        _figure(
            "job process killed, supervisor lives, p50",
            child_only,
            target="≤ 100 ms",
            limit_ms=100.0,
            samples=samples,
            waited_s=child_wait_s,
        ),
        _figure(
            "whole process group killed (heartbeat), p50",
            whole_group,
            target=f"≤ timeout + 1 s = {heartbeat.timeout_s + 1:g} s",
            limit_ms=(heartbeat.timeout_s + 1) * 1000,
            samples=samples,
            waited_s=group_wait_s,
            note=hb_note,
        ),
        figure(
            SECTION,
            "false crashes of a slow run",
            None if false_crash is None else float(false_crash),
            "",
            target="0",
            check=at_most(0),
            note=f"one op sleeping timeout + 1.5 s; {hb_note}",
        ),
    ]


def _figure(
    name: str,
    timings: list[float],
    *,
    target: str,
    limit_ms: float,
    samples: int,
    waited_s: float,
    note: str = "",
) -> Figure:
    if not timings:
        return figure(
            SECTION,
            name,
            None,
            "ms",
            target=target,
            note=f"no on_crashed hook started within {waited_s:g} s of the kill",
        )
    return figure(
        SECTION,
        name,
        percentile(timings, 50) * 1000,
        "ms",
        target=target,
        check=at_most(limit_ms),
        note=f"{len(timings)} of {samples} kills; {note}".rstrip("; "),
    )


def _series(
    env: BenchEnv, heartbeat: Heartbeat, *, samples: int, whole_group: bool, wait_s: float
) -> list[float]:
    timings = []
    for _ in range(samples):
        timing = _kill_once(env, heartbeat, whole_group=whole_group, wait_s=wait_s)
        if timing is None:
            break  # missing, not slow: waiting again would only repeat the timeout
        timings.append(timing)
    return timings


def _start_run(env: BenchEnv, heartbeat: Heartbeat, hang_s: float) -> subprocess.Popen[bytes]:
    for key in env.client.scan_iter(match=bench_key(env.prefix, "*", "*")):
        env.client.delete(key)
    return subprocess.Popen(
        [sys.executable, "-m", "sensors", "run", "bench.locations.alerts", "killed"],
        env={**env.worker_env("run"), **heartbeat.env(), "BENCH_HANG_S": str(hang_s)},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, to kill it whole
    )


def _kill_once(
    env: BenchEnv, heartbeat: Heartbeat, *, whole_group: bool, wait_s: float
) -> float | None:
    run = _start_run(env, heartbeat, hang_s=60)
    try:
        pid_key = bench_key(env.prefix, "pid")
        pid = int(wait_until(lambda: get_float(env.client, pid_key), timeout_s=30, what="the op"))
        time.sleep(heartbeat.interval_s * 2)  # a heartbeat or two has been written
        killed_at = time.time()
        if whole_group:
            os.killpg(run.pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
        try:
            started = wait_until(
                lambda: _crash_noted(env), timeout_s=wait_s, what="the on_crashed hook"
            )
        except TimeoutError:
            return None
        return started - killed_at
    finally:
        _reap(run)


def _crash_noted(env: BenchEnv) -> float | None:
    for key in env.client.scan_iter(match=bench_key(env.prefix, "crashed", "*")):
        noted = get_float(env.client, key)
        if noted is not None:
            return noted
    return None


def _slow_run_called_crashed(env: BenchEnv, heartbeat: Heartbeat) -> int | None:
    run = _start_run(env, heartbeat, hang_s=heartbeat.timeout_s + 1.5)
    try:
        run.wait(timeout=heartbeat.timeout_s + 30)
    except subprocess.TimeoutExpired:
        return None
    finally:
        _reap(run)
    time.sleep(heartbeat.interval_s * 2)  # a late false crash would show up by now
    return 1 if _crash_noted(env) is not None else 0


def _reap(run: subprocess.Popen[bytes]) -> None:
    try:
        run.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
