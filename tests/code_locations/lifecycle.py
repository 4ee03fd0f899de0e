"""A code location for lifecycle tests that cross processes.

Hooks record their calls in a Redis list (``CALLS_KEY`` in the database of
``HOOKBUS_REDIS_URL``) with the pid of the process that ran them, so a test can prove a
hook ran in a worker process and see what it received.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, cast

import redis
from pydantic import BaseModel

from engine import job, op
from sensors import HookContext, failure_hook

#: The Redis list hooks append their calls to.
CALLS_KEY = "hookbus-test:calls"


def record(name: str, **details: Any) -> None:
    """Append one call to ``CALLS_KEY`` (from whatever process runs the hook)."""
    client = redis.Redis.from_url(os.environ["HOOKBUS_REDIS_URL"])
    try:
        client.rpush(CALLS_KEY, json.dumps({"hook": name, "pid": os.getpid(), **details}))
    finally:
        client.close()


def calls(client: redis.Redis) -> list[dict[str, Any]]:
    """Every recorded call, in order."""
    return [json.loads(raw) for raw in cast(list[bytes], client.lrange(CALLS_KEY, 0, -1))]


def cleanup(job_def: Any, run: Any, state: Any) -> None:
    """Prefect-style on_crashed hook."""
    record(
        "cleanup",
        job=job_def.name,
        run_id=run.id,
        state=state.name,
        message=state.message,
    )


def on_cancel(job_def: Any, run: Any, state: Any) -> None:
    record("on_cancel", job=job_def.name, run_id=run.id, state=state.name)


@failure_hook
def op_failed(context: HookContext) -> None:
    record("op_failed", step_key=context.step_key, error=str(context.op_exception))


@op
def started() -> str:
    return "ok"


class HangConfig(BaseModel):
    #: A file the op creates when it runs and waits on until someone deletes it.
    marker: str


@op
def hang(config: HangConfig) -> None:
    """Signal that the op runs (a file), then wait until the file goes (or a kill)."""
    marker = Path(config.marker)
    marker.write_text(str(os.getpid()))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and marker.exists():
        time.sleep(0.02)


@op
def after() -> str:
    return "not reached when cancelled"


@job(on_crashed=[cleanup], on_cancellation=[on_cancel], hooks={op_failed})
def hanging() -> None:
    started()
    hang()
    after()
