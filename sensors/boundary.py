"""The one boundary every call into user code goes through.

Hooks, sensors and resource factories may be sync or async; this is the only place the
difference is handled (sync code runs in the worker's bounded thread pool, async code on
the loop). Any exception user code raises comes out as ``HookExecutionError`` with the
original as ``__cause__``; exceptions from hookbus's own code never pass through here, so
a failing hook and a worker bug cannot be confused.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from sensors.errors import HookExecutionError


async def call_user_code(
    fn: Callable[..., Any],
    *args: Any,
    handler: str,
    event_id: str,
    attempt: int,
    timeout_s: float,
    executor: Executor | None = None,
    **kwargs: Any,
) -> Any:
    """Call ``fn(*args, **kwargs)`` as user code.

    Args:
        handler: the handler's name, for the error.
        event_id: the event being handled, for the error.
        attempt: which attempt this is (from 1), for the error.
        timeout_s: give up after this many seconds (a sync call keeps its thread until it
            returns, but the worker moves on).
        executor: the thread pool for sync code (default: the loop's).

    Raises:
        HookExecutionError: whatever ``fn`` raised (or a timeout), as ``__cause__``.
    """
    try:
        # ``asyncio.timeout`` rather than ``wait_for``: no extra task per call.
        async with asyncio.timeout(timeout_s):
            return await _call(fn, args, kwargs, executor)
    except Exception as exc:
        raise HookExecutionError(
            handler=handler, event_id=event_id, attempt=attempt, cause=exc
        ) from exc


async def _call(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], executor: Executor | None
) -> Any:
    target = getattr(fn, "fn", fn)  # a HookDefinition/SensorDefinition wraps its function
    if inspect.iscoroutinefunction(target):
        return await target(*args, **kwargs)
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(executor, functools.partial(target, *args, **kwargs))
    if inspect.isawaitable(result):
        return await result
    return result
