"""The user-code boundary: sync and async callables, errors wrapped, time limits kept."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from sensors.boundary import call_user_code
from sensors.errors import HookExecutionError
from sensors.hook_threads import HookThreads


async def slow_async() -> None:
    await asyncio.sleep(10)


def test_sync_and_async_callables_return_their_value() -> None:
    async def double(value: int) -> int:
        return value * 2

    async def main() -> tuple[int, str]:
        pool = HookThreads(1, spare=0)
        sync = await call_user_code(
            threading.current_thread,
            handler="h",
            event_id="e",
            attempt=1,
            timeout_s=5,
            threads=pool,
        )
        pool.close()
        return await call_user_code(
            double, 21, handler="h", event_id="e", attempt=1, timeout_s=5
        ), sync.name

    value, thread_name = asyncio.run(main())
    assert value == 42
    assert thread_name != threading.current_thread().name  # sync code left the loop


def test_an_async_hook_over_its_time_limit_fails_as_a_timeout() -> None:
    async def main() -> None:
        await call_user_code(
            slow_async, handler="hook:m:slow", event_id="e1", attempt=2, timeout_s=0.05
        )

    started = time.monotonic()
    with pytest.raises(
        HookExecutionError,
        match=r"handler 'hook:m:slow' failed on event 'e1' \(attempt 2\): TimeoutError",
    ) as caught:
        asyncio.run(main())
    assert time.monotonic() - started < 5
    assert isinstance(caught.value.__cause__, TimeoutError)


def test_a_sync_hook_over_its_time_limit_fails_and_the_worker_moves_on() -> None:
    release = threading.Event()

    async def main() -> None:
        pool = HookThreads(1, spare=1)
        try:
            await call_user_code(
                release.wait,
                10,
                handler="hook:m:stuck",
                event_id="e2",
                attempt=1,
                timeout_s=0.05,
                threads=pool,
            )
        finally:
            release.set()  # let the abandoned thread end
            pool.close()

    with pytest.raises(HookExecutionError, match=r"'hook:m:stuck' .*TimeoutError"):
        asyncio.run(main())


def test_a_cancellation_user_code_lets_out_is_its_failure_not_a_stop() -> None:
    async def lets_a_cancellation_out() -> None:
        task = asyncio.ensure_future(asyncio.sleep(10))  # something it awaits is cancelled
        await asyncio.sleep(0)
        task.cancel()
        await task

    async def main() -> None:
        await call_user_code(
            lets_a_cancellation_out, handler="check:c", event_id="e1", attempt=1, timeout_s=5
        )

    with pytest.raises(HookExecutionError) as caught:
        asyncio.run(main())
    assert isinstance(caught.value.__cause__, asyncio.CancelledError)


def test_cancelling_the_caller_still_cancels() -> None:
    async def main() -> None:
        task = asyncio.ensure_future(
            call_user_code(slow_async, handler="check:c", event_id="e1", attempt=1, timeout_s=5)
        )
        await asyncio.sleep(0.01)
        task.cancel()
        await task

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(main())
