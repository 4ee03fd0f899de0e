"""A code location for fault tests: hooks that report to Redis which process ran them.

Worker subprocesses run these hooks; the test reads what they wrote. Every key lives under
``HOOKBUS_KEY_PREFIX`` so the test's ``flushdb`` clears it.
"""

from __future__ import annotations

import os
import time

import redis

from engine import job, op
from sensors import HookContext, RunFailureSensorContext, failure_hook, run_failure_sensor

#: While this key exists, ``slow_hook`` keeps running (up to ``MAX_HOLD_S``).
HOLD = "faults:hold"
MAX_HOLD_S = 20.0


def _client() -> redis.Redis:
    # Test code: a real code location would take a resource; this one reads what the
    # test harness set for the worker process.
    return redis.Redis.from_url(os.environ["HOOKBUS_REDIS_URL"])


def key(name: str) -> str:
    """A key under the test prefix."""
    return f"{os.environ.get('HOOKBUS_KEY_PREFIX', 'hookbus-test')}:{name}"


@failure_hook
def slow_hook(context: HookContext) -> None:
    client = _client()
    client.rpush(key(f"faults:started:{context.run_id}"), os.getpid())
    deadline = time.monotonic() + MAX_HOLD_S
    while client.exists(key(HOLD)) and time.monotonic() < deadline:
        time.sleep(0.02)
    client.rpush(key(f"faults:done:{context.run_id}"), os.getpid())


@failure_hook
def count_hook(context: HookContext) -> None:
    client = _client()
    time.sleep(0.005)  # long enough that two workers interleave
    client.hincrby(key(f"faults:count:{context.run_id}"), context.step_key, 1)
    client.sadd(key("faults:pids"), os.getpid())


@op
def explode() -> None:
    raise ValueError("boom")


@job(hooks={slow_hook})
def slow_alert() -> None:
    explode()


@job(hooks={count_hook})
def counted() -> None:
    explode()


@run_failure_sensor(monitored_jobs=[counted, slow_alert])
def failures_seen(context: RunFailureSensorContext) -> None:
    _client().hincrby(key("faults:sensor"), context.run.run_id, 1)
