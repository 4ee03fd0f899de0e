"""A job that stops its own Redis in the middle of the run (and starts it again).

The test sets ``SERVER`` to a private ``RedisServer``; hooks record their calls in
``CALLS`` (the worker runs in the test's process, in burst mode).
"""

from __future__ import annotations

from typing import Any

from bus.redis_server import RedisServer
from engine import job, op
from sensors import HookContext, failure_hook, success_hook

SERVER: RedisServer | None = None
CALLS: list[tuple[str, str]] = []


@success_hook
def op_done(context: HookContext) -> None:
    CALLS.append(("op_done", context.step_key))


@failure_hook
def op_failed(context: HookContext) -> None:
    CALLS.append(("op_failed", context.step_key))


def run_done(job_def: Any, run: Any, state: Any) -> None:
    CALLS.append(("run_done", state.name))


@op
def before() -> int:
    return 1


@op
def stop_redis() -> None:
    assert SERVER is not None
    SERVER.stop()


@op
def during(value: int) -> int:
    return value + 1


@op
def fails_during() -> None:
    raise RuntimeError("failed while Redis was away")


@op
def start_redis() -> None:
    assert SERVER is not None
    SERVER.start()


@job(hooks={op_done, op_failed}, on_completion=[run_done])
def outage() -> int:
    value = before()
    stop_redis()
    value = during(value)
    fails_during(return_state=True)
    start_redis()
    return during(value)  # type: ignore[no-any-return]


@job(hooks={op_done})
def offline() -> int:
    return during(1)  # type: ignore[no-any-return]
