"""Hooks and a sensor that note when they start, for the latency and crash benchmarks.

Each handler writes ``time.time()`` (the wall clock, which every process on the machine
shares) to a key under the worker's own ``HOOKBUS_KEY_PREFIX`` as its first act; the
benchmark compares it with the time the op raised, the run failed or the process was
killed. The Redis URL and prefix come from the worker's environment, as a user's hook
would read its own configuration.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any

import redis

from engine import job, op
from sensors import HookContext, RunFailureSensorContext, failure_hook, run_failure_sensor

#: When ``fail_now`` last raised (``time.time()``); read by the benchmark in the same process.
RAISED_AT: list[float] = []


def bench_key(prefix: str, kind: str, name: str = "") -> str:
    """A benchmark-only key (deleted with the prefix at the end of the run, no TTL)."""
    return f"{prefix}:bench:{kind}:{name}"


@functools.cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(os.environ["HOOKBUS_REDIS_URL"])


def _note(kind: str, name: str) -> None:
    started = time.time()
    prefix = os.environ.get("HOOKBUS_KEY_PREFIX", "hookbus")
    _client().set(bench_key(prefix, kind, name), repr(started))


@failure_hook
def note_op_failure(context: HookContext) -> None:
    """The failure hook whose start is timed."""
    _note("hook", context.run_id)


@failure_hook
def noop_failure(context: HookContext) -> None:
    """Attached to the background load's job; its events (op completed) do not trigger it."""


@op
def fail_now() -> None:
    RAISED_AT.append(time.time())
    raise RuntimeError("benchmark failure")


@op
def hang(seconds: float) -> None:
    """Tell the benchmark which process runs the op, then wait to be killed."""
    _client().set(
        bench_key(os.environ.get("HOOKBUS_KEY_PREFIX", "hookbus"), "pid"), str(os.getpid())
    )
    time.sleep(seconds)


@job(hooks={note_op_failure})
def failing() -> None:
    """One op that raises at once."""
    fail_now()


@op
def succeed() -> int:
    return 1


@job(hooks={noop_failure})
def load_unit() -> int:
    """The template of the background load: an op completing in a job with a failure hook,
    like most events of a healthy pipeline (the worker reads, decodes and acks them)."""
    return succeed()  # type: ignore[no-any-return]


def note_crash(job_def: Any, run: Any, state: Any) -> None:
    """Prefect-style ``on_crashed`` hook: note when it started."""
    _note("crashed", run.id)


@job(on_crashed=[note_crash])
def killed() -> None:
    """An op that waits long enough to be killed (``hookbus run`` of this job)."""
    hang(float(os.environ.get("BENCH_HANG_S", "60")))


@run_failure_sensor(monitored_jobs=[failing])
def note_run_failure(context: RunFailureSensorContext) -> None:
    """The run failure sensor whose start is timed."""
    _note("sensor", context.run.run_id)
