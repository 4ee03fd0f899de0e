"""The one boundary every call into user code goes through.

Hooks, sensors and resource factories may be sync or async; this is the only place the
difference is handled (sync code runs in the worker's bounded thread pool,
``sensors.hook_threads.HookThreads``, async code on the loop). Any exception user code
raises comes out as ``HookExecutionError`` with the original as ``__cause__``; exceptions
from hookbus's own code never pass through here, so a failing hook and a worker bug cannot
be confused.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from typing import Any

from sensors.errors import HookExecutionError
from sensors.hook_threads import HookThreads


async def call_user_code(
    fn: Callable[..., Any],
    *args: Any,
    handler: str,
    event_id: str,
    attempt: int,
    timeout_s: float,
    threads: HookThreads | None = None,
    **kwargs: Any,
) -> Any:
    """Call ``fn(*args, **kwargs)`` as user code.

    Args:
        handler: the handler's name, for the error.
        event_id: the event being handled, for the error.
        attempt: which attempt this is (from 1), for the error.
        timeout_s: give up after this many seconds of running. With ``threads``, a sync
            call's time starts when it begins in its thread (not while it waits for one);
            it keeps its thread until it returns, but the worker moves on.
        threads: the thread pool for sync code (default: the loop's executor, where the
            time limit includes the wait for a thread).

    Raises:
        HookExecutionError: whatever ``fn`` raised (or a timeout), as ``__cause__``.
    """
    try:
        return await _call(fn, args, kwargs, threads, handler=handler, timeout_s=timeout_s)
    except Exception as exc:
        raise HookExecutionError(
            handler=handler, event_id=event_id, attempt=attempt, cause=exc
        ) from exc


async def _call(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    threads: HookThreads | None,
    *,
    handler: str,
    timeout_s: float,
) -> Any:
    target = getattr(fn, "fn", fn)  # a HookDefinition/SensorDefinition wraps its function
    call = functools.partial(target, *args, **kwargs)
    # ``asyncio.timeout`` rather than ``wait_for``: no extra task per call.
    if inspect.iscoroutinefunction(target):
        async with asyncio.timeout(timeout_s):
            return await call()
    if threads is not None:
        result = await threads.run(call, handler=handler, timeout_s=timeout_s)
    else:
        async with asyncio.timeout(timeout_s):
            result = await asyncio.get_running_loop().run_in_executor(None, call)
    if inspect.isawaitable(result):
        async with asyncio.timeout(timeout_s):
            return await result
    return result
