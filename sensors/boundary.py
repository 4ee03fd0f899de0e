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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sensors.errors import HookExecutionError
from sensors.hook_threads import HookThreads, Outcome


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


# Not frozen: one is made per handler call (see ``Outcome``).
@dataclass(slots=True)
class UserCall:
    """One call into user code for ``call_user_code_many``: ``fn(*args, **kwargs)``."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    handler: str
    event_id: str
    attempt: int = 1
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> Callable[..., Any]:
        """The function itself (a HookDefinition/SensorDefinition wraps its function)."""
        return getattr(self.fn, "fn", self.fn)

    def __call__(self) -> Any:
        """Make the call (in a hook thread, for a sync function)."""
        return self.target(*self.args, **self.kwargs)

    def error(self, cause: BaseException) -> HookExecutionError:
        """What ``call_user_code`` would have raised for ``cause``."""
        error = HookExecutionError(
            handler=self.handler, event_id=self.event_id, attempt=self.attempt, cause=cause
        )
        error.__cause__ = cause
        return error


async def call_user_code_many(
    calls: Sequence[UserCall],
    *,
    timeout_s: float,
    threads: HookThreads,
    patience_s: float | None = None,
) -> list[Outcome | asyncio.Future[Outcome]]:
    """Make every call as ``call_user_code`` would, all at once; one outcome per call.

    Sync calls go to the thread pool as one batch (``HookThreads.run_many``: no hand-off
    to a thread per call, which costs more than a no-op hook), async calls run
    concurrently on the loop. A failed outcome holds the ``HookExecutionError`` that
    ``call_user_code`` would have raised. Calls still running after ``patience_s`` come
    back as futures of their outcomes.
    """
    is_async = [_is_async(call.target) for call in calls]
    sync_calls = [call for call, on_loop in zip(calls, is_async, strict=True) if not on_loop]
    async_calls = [call for call, on_loop in zip(calls, is_async, strict=True) if on_loop]
    on_the_loop, deadline = _start_on_loop(async_calls, timeout_s)
    in_threads: list[Outcome | asyncio.Future[Outcome]] = []
    if sync_calls and on_the_loop:
        in_threads, _ = await asyncio.gather(
            threads.run_many(sync_calls, timeout_s=timeout_s, patience_s=patience_s),
            asyncio.wait(on_the_loop, timeout=patience_s),
        )
    elif sync_calls:
        in_threads = await threads.run_many(sync_calls, timeout_s=timeout_s, patience_s=patience_s)
    elif on_the_loop:
        await asyncio.wait(on_the_loop, timeout=patience_s)
    if deadline is not None and all(task.done() for task in on_the_loop):
        deadline.cancel()  # the usual case: nothing left to time out
    sync_outcomes = iter(
        [
            await _settled(call, outcome, timeout_s)
            if isinstance(outcome, Outcome)
            else asyncio.ensure_future(_settled_later(call, outcome, timeout_s))
            for call, outcome in zip(sync_calls, in_threads, strict=True)
        ]
    )
    async_outcomes = iter([task.result() if task.done() else task for task in on_the_loop])
    return [next(async_outcomes) if on_loop else next(sync_outcomes) for on_loop in is_async]


class _Deadline:
    """One time limit for async calls that all started together, instead of a timer per
    call: at ``timeout_s``, those still running are cancelled and fail with a timeout."""

    def __init__(self, tasks: list[asyncio.Task[Outcome]], timeout_s: float) -> None:
        self.expired = False
        self._tasks = tasks
        self._timer = asyncio.get_running_loop().call_later(timeout_s, self._expire)

    def cancel(self) -> None:
        """Every call has ended: stop the timer (and let go of the tasks)."""
        self._timer.cancel()

    def _expire(self) -> None:
        self.expired = True
        for task in self._tasks:
            task.cancel()


def _start_on_loop(
    calls: Sequence[UserCall], timeout_s: float
) -> tuple[list[asyncio.Task[Outcome]], _Deadline | None]:
    if not calls:
        return [], None
    holder: list[_Deadline] = []
    tasks = [asyncio.ensure_future(_async_outcome(call, holder)) for call in calls]
    holder.append(_Deadline(tasks, timeout_s))
    return tasks, holder[0]


@functools.cache
def _is_async(fn: Callable[..., Any]) -> bool:
    # Cached per function: the same few hooks are asked about thousands of times a second.
    return inspect.iscoroutinefunction(fn)


async def _async_outcome(call: UserCall, deadline: list[_Deadline]) -> Outcome:
    try:
        return Outcome(True, await call.target(*call.args, **call.kwargs))
    except asyncio.CancelledError:
        if not (deadline and deadline[0].expired):
            raise  # cancelled from outside (the worker is stopping): not the hook's failure
        return Outcome(False, call.error(TimeoutError("still running after its time limit")))
    except Exception as exc:
        return Outcome(False, call.error(exc))


async def _settled_later(
    call: UserCall, outcome: asyncio.Future[Outcome], timeout_s: float
) -> Outcome:
    return await _settled(call, await outcome, timeout_s)


async def _settled(call: UserCall, outcome: Outcome, timeout_s: float) -> Outcome:
    """A sync call's outcome as ``call_user_code`` gives it: errors wrapped, and an
    awaitable it returned awaited on the loop."""
    if not outcome.ok:
        # Even a SystemExit raised in a hook's thread is the hook failing, not the worker.
        return Outcome(False, call.error(outcome.value))
    if not inspect.isawaitable(outcome.value):
        return outcome
    try:
        async with asyncio.timeout(timeout_s):
            return Outcome(True, await outcome.value)
    except Exception as exc:
        return Outcome(False, call.error(exc))
