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
from collections import deque
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
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is None or task.cancelling():
            raise  # the worker is stopping
        # Nobody cancelled this task: user code let out a cancellation of its own.
        raise HookExecutionError(
            handler=handler, event_id=event_id, attempt=attempt, cause=exc
        ) from exc
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
    slots: asyncio.Semaphore | None = None,
) -> list[Outcome | asyncio.Future[Outcome]]:
    """Make every call as ``call_user_code`` would, all at once; one outcome per call.

    Sync calls go to the thread pool as one batch (``HookThreads.run_many``: no hand-off
    to a thread per call, which costs more than a no-op hook), async calls run
    concurrently on the loop. A failed outcome holds the ``HookExecutionError`` that
    ``call_user_code`` would have raised. Calls still running after ``patience_s`` come
    back as futures of their outcomes. ``slots``, shared by every batch of a worker, bounds
    its async calls running at once (its sync ones are bounded by ``threads``).
    """
    is_async = [_is_async(call.target) for call in calls]
    sync_calls = [call for call, on_loop in zip(calls, is_async, strict=True) if not on_loop]
    async_calls = [call for call, on_loop in zip(calls, is_async, strict=True) if on_loop]
    on_the_loop = _LoopCalls(async_calls, timeout_s=timeout_s, width=threads.size, slots=slots)
    in_threads: list[Outcome | asyncio.Future[Outcome]] = []
    if sync_calls and async_calls:
        in_threads, _ = await asyncio.gather(
            threads.run_many(sync_calls, timeout_s=timeout_s, patience_s=patience_s),
            on_the_loop.wait(patience_s),
        )
    elif sync_calls:
        in_threads = await threads.run_many(sync_calls, timeout_s=timeout_s, patience_s=patience_s)
    else:
        await on_the_loop.wait(patience_s)
    sync_outcomes = iter(
        [
            # Most calls returned a plain value: no coroutine for them (thousands a second).
            outcome
            if isinstance(outcome, Outcome)
            and outcome.ok
            and (outcome.value is None or not inspect.isawaitable(outcome.value))
            else await _settled(call, outcome, timeout_s)
            if isinstance(outcome, Outcome)
            else asyncio.ensure_future(_settled_later(call, outcome, timeout_s))
            for call, outcome in zip(sync_calls, in_threads, strict=True)
        ]
    )
    async_outcomes = iter(on_the_loop.outcomes())
    return [next(async_outcomes) if on_loop else next(sync_outcomes) for on_loop in is_async]


class _LoopCalls:
    """A batch's async calls on the loop: ``width`` drainer tasks each take the next call
    until none is left, each call holding one of the worker's ``slots`` while it runs (so
    the worker never runs more than its concurrency, whatever the number of batches).

    Each call's time limit starts when it starts, not while it waits its turn. It is kept
    by one alarm per batch rather than an ``asyncio.timeout`` per call (a timer made and
    cancelled per call cost more than a no-op hook): the alarm goes off at the earliest
    running call's deadline, cancels every drainer whose call has overrun (that call's
    outcome is a ``TimeoutError``; the drainer goes on with the next call) and is set again
    for the next deadline while calls run.
    """

    def __init__(
        self,
        calls: Sequence[UserCall],
        *,
        timeout_s: float,
        width: int,
        slots: asyncio.Semaphore | None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._calls = calls
        self._timeout_s = timeout_s
        self._slots = slots or asyncio.Semaphore(width)
        self._todo = deque(range(len(calls)))
        self._outcomes: list[Outcome | None] = [None] * len(calls)
        #: Futures handed out by ``outcomes`` for calls that had not ended (made only then:
        #: a future per call cost more than a no-op hook).
        self._futures: dict[int, asyncio.Future[Outcome]] = {}
        #: A drainer was cancelled: the calls it left will never end.
        self._cancelled = False
        #: Each drainer running a call now, with when that call started (loop time).
        self._running: dict[asyncio.Task[None], float] = {}
        #: Drainers cancelled by the alarm, whose call is still to end as a timeout.
        self._overran: set[asyncio.Task[None]] = set()
        self._alarm: asyncio.TimerHandle | None = None
        self._drainers = [
            asyncio.ensure_future(self._drain()) for _ in range(min(width, len(calls)))
        ]
        self._left = len(self._drainers)

    async def wait(self, patience_s: float | None) -> None:
        """Until every call has ended, or ``patience_s`` has passed."""
        if not self._drainers:
            return
        try:
            await asyncio.wait(self._drainers, timeout=patience_s)
        except asyncio.CancelledError:
            for drainer in self._drainers:  # the batch is handed back: stop its calls too
                drainer.cancel()
            raise

    def outcomes(self) -> list[Outcome | asyncio.Future[Outcome]]:
        """Each call's outcome, or the future of it while it still runs (or waits).

        Raises:
            asyncio.CancelledError: a drainer was cancelled (the worker stopping) and left
                calls that will never end.
        """
        results: list[Outcome | asyncio.Future[Outcome]] = []
        for index, outcome in enumerate(self._outcomes):
            if outcome is None:
                if self._cancelled:
                    raise asyncio.CancelledError
                future = self._futures.get(index)
                if future is None:
                    future = self._futures[index] = self._loop.create_future()
                results.append(future)
            else:
                results.append(outcome)
        return results

    async def _drain(self) -> None:
        task = asyncio.current_task()
        assert task is not None  # a drainer is a task (``ensure_future``)
        try:
            while self._todo:
                index = self._todo.popleft()
                async with self._slots:
                    outcome = await self._one(task, self._calls[index])
                self._outcomes[index] = outcome
                future = self._futures.pop(index, None)
                if future is not None and not future.done():  # its awaiter may be cancelled
                    future.set_result(outcome)
        except asyncio.CancelledError:
            self._cancelled = True  # nothing more runs: no future made from now on would end
            for future in self._futures.values():
                future.cancel()
            raise
        finally:
            self._left -= 1
            if not self._left and self._alarm is not None:
                self._alarm.cancel()  # else it would keep the batch alive until it rings

    async def _one(self, task: asyncio.Task[None], call: UserCall) -> Outcome:
        self._running[task] = self._loop.time()
        if self._alarm is None:
            self._alarm = self._loop.call_at(self._loop.time() + self._timeout_s, self._ring)
        try:
            return Outcome(True, await call.target(*call.args, **call.kwargs))
        except asyncio.CancelledError as exc:
            if task not in self._overran:
                if task.cancelling():
                    raise  # the worker is stopping
                # Nobody cancelled this task: the hook let out a CancelledError of its own
                # (it awaited something that was cancelled). Its failure, like any other:
                # retried, then dead-lettered, while the batch's other calls go on and
                # are recorded (handing the batch back would run them all again).
                return Outcome(False, call.error(exc))
            self._overran.discard(task)
            if task.uncancel():  # cancelled by someone else as well: the worker is stopping
                raise
            return Outcome(
                False,
                call.error(
                    TimeoutError(f"still running after its time limit of {self._timeout_s}s")
                ),
            )
        except Exception as exc:
            return Outcome(False, call.error(exc))
        finally:
            del self._running[task]
            if task in self._overran:  # also when the call swallowed the cancellation
                self._overran.discard(task)
                task.uncancel()

    def _ring(self) -> None:
        """Cancel the drainers whose call overran; set the alarm for the next deadline."""
        self._alarm = None
        now = self._loop.time()
        next_deadline: float | None = None
        for task, started in self._running.items():
            deadline = started + self._timeout_s
            if deadline <= now:
                if task not in self._overran:
                    self._overran.add(task)
                    task.cancel()
            elif next_deadline is None or deadline < next_deadline:
                next_deadline = deadline
        if next_deadline is not None:
            self._alarm = self._loop.call_at(next_deadline, self._ring)


@functools.cache
def _is_async(fn: Callable[..., Any]) -> bool:
    # Cached per function: the same few hooks are asked about thousands of times a second.
    return inspect.iscoroutinefunction(fn)


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
