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
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sensors.metrics import HOOK_THREADS_ABANDONED

logger = logging.getLogger(__name__)

#: The name prefix of the threads that run sync hooks (check threads share it).
HOOK_THREAD = "hookbus-hook"
#: The name prefix of the threads that run sync checks (a pool of their own).
CHECK_THREAD = f"{HOOK_THREAD}-check"


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
        """
        if self.abandoned > self.spare:
            logger.error(
                "hook threads exhausted pool=%s abandoned=%d spare=%d; handler=%s waits for "
                "a thread (hung hooks: restart the worker)",
                self.name,
                self.abandoned,
                self.spare,
                handler,
            )
        loop = asyncio.get_running_loop()
        started = asyncio.Event()

        def in_thread() -> Any:
            loop.call_soon_threadsafe(started.set)
            return call()

        future = self._pool.submit(in_thread)
        try:
            await started.wait()
            async with asyncio.timeout(timeout_s):
                return await asyncio.wrap_future(future)
        except TimeoutError:
            self._abandon(future, handler, timeout_s)
            raise
        except asyncio.CancelledError:
            if not future.cancel() and not future.done():
                self._abandon(future, handler, None)
            raise

    def close(self) -> None:
        """Drop queued calls; abandoned threads end when their calls return."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _abandon(self, future: Future[Any], handler: str, timeout_s: float | None) -> None:
        if future.done():
            return
        with self._lock:
            self.abandoned += 1
        self._gauge.inc()
        if timeout_s is not None:
            logger.warning(
                "hook thread abandoned handler=%s timeout_s=%.1f pool=%s abandoned=%d "
                "spare=%d: the call is still running; its thread is replaced",
                handler,
                timeout_s,
                self.name,
                self.abandoned,
                self.spare,
            )
        future.add_done_callback(lambda _: self._returned(handler))

    def _returned(self, handler: str) -> None:
        with self._lock:  # runs in the abandoned thread
            self.abandoned -= 1
        self._gauge.dec()
        logger.info("abandoned hook thread returned handler=%s pool=%s", handler, self.name)
