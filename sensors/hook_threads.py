"""The threads that run sync user code, and what happens to those a hung hook keeps.

A sync hook cannot be interrupted: when it overruns its time limit the worker moves on,
but the thread stays busy until the call returns (an HTTP request without a timeout may
never return). Such a thread is *abandoned*: counted (``hookbus_hook_threads_abandoned``),
logged with the hook's name, and replaced, since the pool holds ``spare`` threads beyond
``size`` for this. So ``size`` hung hooks cannot starve every other hook.

The time limit starts when the call begins running in its thread, not while it waits for
one: a hook never times out (and is retried, then dead-lettered) for having been queued.
Once more than ``spare`` threads are abandoned, new calls wait for a thread (logged as an
error): the worker slows down rather than failing healthy hooks; restart it.

Calls come in batches (``run_many``: every sync handler of a read batch). Handing each
call to a thread on its own costs more than a no-op hook itself (a future, a wake-up of
the loop per call), so a batch goes to *drainers*: each is one thread job that takes the
batch's next call until none is left, and reports nothing until it is done. A batch
starts with one drainer and gets more, up to ``size``, only while calls are left waiting
after a tick: quick calls then run in one thread instead of sixteen threads fighting the
loop for the GIL, and slow ones still run ``size`` at a time.

A watcher on the loop looks at the drainers every tick to enforce each call's time limit;
a drainer stuck in an overrunning call is abandoned and a fresh one takes over the rest.
With ``patience_s``, ``run_many`` returns once that time is up: the outcomes of the
calls still running come as futures, so the fast calls' work can go on (their entries be
acked) without waiting for a slow one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from sensors.metrics import HOOK_THREADS_ABANDONED

logger = logging.getLogger(__name__)

#: The name prefix of the threads that run sync hooks (and check functions, sensors, rules).
HOOK_THREAD = "hookbus-hook"
#: How long a batch's first drainer runs alone before more join in, if calls still wait.
RAMP_TICK_S = 0.005
#: The longest the loop goes without looking at running calls (their time limits, and
#: the outcomes awaited as futures), in seconds.
MAX_TICK_S = 0.05


class ThreadCall(Protocol):
    """One sync call to make in a thread, on behalf of a handler (``call()``)."""

    @property
    def handler(self) -> str: ...

    def __call__(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class _Call:
    """``fn()`` as a ``ThreadCall``."""

    fn: Callable[[], Any]
    handler: str

    def __call__(self) -> Any:
        return self.fn()


# Not frozen: one is made per handler call, and a frozen dataclass's __init__ costs several
# times more; nothing changes an outcome after it is made.
@dataclass(slots=True)
class Outcome:
    """How one call ended: ``value`` is what it returned (``ok``) or what it raised."""

    ok: bool
    value: Any


class _Batch:
    """The calls of one ``run_many`` and their outcomes; ``lock`` guards both."""

    def __init__(self, calls: Sequence[ThreadCall]) -> None:
        self.calls = calls
        self.todo = deque(range(len(calls)))
        self.outcomes: list[Outcome | None] = [None] * len(calls)
        self.lock = threading.Lock()
        #: Futures handed out for calls that were still running when patience ran out.
        self.waiting: dict[int, asyncio.Future[Outcome]] = {}

    def resolve_waiting(self) -> None:
        """Give each awaited outcome that has come in to its future (on the loop)."""
        for index, future in list(self.waiting.items()):
            outcome = self.outcomes[index]
            if outcome is not None:
                del self.waiting[index]
                if not future.done():
                    future.set_result(outcome)


class _Drainer:
    """One thread's share of a batch: it takes the next call until none is left."""

    def __init__(self, batch: _Batch, on_return: Callable[[str], None]) -> None:
        self.batch = batch
        self._on_return = on_return
        #: The call running now (an index into the batch), and since when.
        self.current: int | None = None
        self.started = 0.0
        #: Set by the loop when the running call overran: this thread takes no more.
        self.abandoned = False

    def run(self) -> None:  # in a pool thread
        batch = self.batch
        while True:
            with batch.lock:
                if self.abandoned or not batch.todo:
                    self.current = None
                    return
                index = self.current = batch.todo.popleft()
                self.started = time.monotonic()
            try:
                outcome = Outcome(True, batch.calls[index]())
            except BaseException as exc:  # user code: whatever it raises is its outcome
                outcome = Outcome(False, exc)
            with batch.lock:
                self.current = None
                if not self.abandoned:
                    batch.outcomes[index] = outcome
                    continue
            # The loop gave up on this call (its outcome is a timeout); the thread is free.
            self._on_return(batch.calls[index].handler)
            return


class HookThreads:
    """A bounded thread pool for sync user code that survives hung calls.

    Args:
        size: calls running at once in normal operation.
        spare: extra threads that replace abandoned ones (the pool never exceeds
            ``size + spare`` threads).
        name: the threads' name prefix, also the ``pool`` label of the metric.
    """

    def __init__(self, size: int, *, spare: int, name: str = HOOK_THREAD) -> None:
        self.size = size
        self.spare = spare
        self.name = name
        self._pool = ThreadPoolExecutor(size + spare, thread_name_prefix=name)
        #: Calls that overran their time limit and still hold a thread.
        self.abandoned = 0
        #: Drainers running now, across batches (at most ``size``; touched on the loop only).
        self.running = 0
        self._lock = threading.Lock()  # ``abandoned`` drops from the abandoned thread
        self._gauge = HOOK_THREADS_ABANDONED.labels(name)

    def __repr__(self) -> str:
        return (
            f"<HookThreads name={self.name!r} size={self.size} spare={self.spare} "
            f"abandoned={self.abandoned}>"
        )

    async def run(self, call: Callable[[], Any], *, handler: str, timeout_s: float) -> Any:
        """Run ``call()`` in a thread; give up ``timeout_s`` seconds after it started.

        Raises:
            TimeoutError: the call ran longer than ``timeout_s`` (its thread is abandoned).
            Exception: whatever ``call()`` raised.
        """
        (outcome,) = await self.run_many([_Call(call, handler)], timeout_s=timeout_s)
        assert isinstance(outcome, Outcome)  # no patience: every call has ended
        if outcome.ok:
            return outcome.value
        raise outcome.value

    async def run_many(
        self, calls: Sequence[ThreadCall], *, timeout_s: float, patience_s: float | None = None
    ) -> list[Outcome | asyncio.Future[Outcome]]:
        """Run every call, at most ``size`` at once; each may run ``timeout_s`` seconds.

        Args:
            patience_s: return after this long even if some calls are still running (their
                outcomes come as futures); ``None``: wait for every call.

        Returns:
            One outcome per call, in order; a call that overran has a ``TimeoutError``.
        """
        if not calls:
            return []
        if self.abandoned > self.spare:
            logger.error(
                "hook threads exhausted pool=%s abandoned=%d spare=%d; handler=%s waits for "
                "a thread (hung hooks: restart the worker)",
                self.name,
                self.abandoned,
                self.spare,
                calls[0].handler,
            )
        batch = _Batch(calls)
        live: dict[asyncio.Future[None], _Drainer] = {}
        self._start_drainers(batch, live, 1)
        watcher = asyncio.ensure_future(self._watch(batch, live, timeout_s))
        try:
            await asyncio.wait([watcher], timeout=patience_s)
        except asyncio.CancelledError:
            watcher.cancel()
            raise
        if watcher.done():
            watcher.result()
        loop = asyncio.get_running_loop()
        results: list[Outcome | asyncio.Future[Outcome]] = []
        with batch.lock:
            for index, outcome in enumerate(batch.outcomes):
                if outcome is not None:
                    results.append(outcome)
                    continue
                future: asyncio.Future[Outcome] = loop.create_future()
                results.append(batch.waiting.setdefault(index, future))
        return results

    async def _watch(
        self, batch: _Batch, live: dict[asyncio.Future[None], _Drainer], timeout_s: float
    ) -> None:
        """Until every drainer is done: enforce the time limits, add drainers while calls
        wait, hand out outcomes."""
        tick_s = RAMP_TICK_S
        try:
            while live or batch.todo:
                if live:
                    done, _ = await asyncio.wait(live, timeout=tick_s)
                else:  # every thread is busy with other batches: wait for one
                    done = set()
                    await asyncio.sleep(tick_s)
                tick_s = min(max(timeout_s / 4, RAMP_TICK_S), MAX_TICK_S)
                for future in done:
                    del live[future]
                    self.running -= 1
                self._enforce_time_limit(batch, live, timeout_s)
                batch.resolve_waiting()
                self._start_drainers(batch, live, self.size)
        except asyncio.CancelledError:
            self._give_up(batch, live)
            raise

    def close(self) -> None:
        """Drop queued calls; abandoned threads end when their calls return."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _start_drainers(
        self, batch: _Batch, live: dict[asyncio.Future[None], _Drainer], wanted: int
    ) -> None:
        """Start up to ``wanted`` drainers for ``batch``, within the pool's ``size``
        across every batch (the spare threads are for replacing abandoned ones only)."""
        for _ in range(min(wanted, len(batch.todo), self.size - self.running)):
            drainer = _Drainer(batch, self._returned)
            self.running += 1
            live[asyncio.wrap_future(self._pool.submit(drainer.run))] = drainer

    def _enforce_time_limit(
        self, batch: _Batch, live: dict[asyncio.Future[None], _Drainer], timeout_s: float
    ) -> None:
        now = time.monotonic()
        for future, drainer in list(live.items()):
            with batch.lock:
                index = drainer.current
                if index is None or now - drainer.started <= timeout_s:
                    continue
                self._abandon(drainer)
                batch.outcomes[index] = Outcome(
                    False, TimeoutError(f"still running after its time limit of {timeout_s}s")
                )
                more = bool(batch.todo)
            del live[future]
            self.running -= 1  # its thread now counts as abandoned (a spare replaces it)
            logger.warning(
                "hook thread abandoned handler=%s timeout_s=%.1f pool=%s abandoned=%d "
                "spare=%d: the call is still running; its thread is replaced",
                batch.calls[index].handler,
                timeout_s,
                self.name,
                self.abandoned,
                self.spare,
            )
            if more:  # its thread is gone for now: a fresh one takes over the rest
                self._start_drainers(batch, live, 1)

    def _give_up(self, batch: _Batch, live: dict[asyncio.Future[None], _Drainer]) -> None:
        """The caller was cancelled (shutdown): drop what has not started; running calls
        keep their threads, which are abandoned."""
        with batch.lock:
            batch.todo.clear()
            for drainer in live.values():
                if drainer.current is not None:
                    self._abandon(drainer)
            for future in batch.waiting.values():
                future.cancel()
        self.running -= len(live)  # idle ones end at once; busy ones count as abandoned
        live.clear()

    def _abandon(self, drainer: _Drainer) -> None:
        # Called with the batch's lock held, so the count goes up before the drainer,
        # whose call may return any moment, can bring it down (``_returned``).
        drainer.abandoned = True
        with self._lock:
            self.abandoned += 1
        self._gauge.inc()

    def _returned(self, handler: str) -> None:
        with self._lock:  # runs in the abandoned thread
            self.abandoned -= 1
        self._gauge.dec()
        logger.info("abandoned hook thread returned handler=%s pool=%s", handler, self.name)
