"""Many calls into user code at once: sync ones batched in threads, async ones on the loop;
each keeps its own outcome and time limit, and a slow one is handed back as a future."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from sensors.boundary import UserCall, call_user_code_many
from sensors.errors import HookExecutionError
from sensors.hook_threads import HookThreads, Outcome


def quick(value: int) -> int:
    return value * 2


async def quick_async(value: int) -> int:
    await asyncio.sleep(0)
    return value * 3


def fails() -> None:
    raise ValueError("boom")


async def hangs_async() -> None:
    await asyncio.sleep(60)


def call(fn: object, *args: object, handler: str = "hook:m:f") -> UserCall:
    return UserCall(fn, args, handler=handler, event_id="e1")  # type: ignore[arg-type]


def test_every_call_gets_its_own_outcome_in_order() -> None:
    async def main() -> list[Outcome | asyncio.Future[Outcome]]:
        pool = HookThreads(4, spare=1)
        try:
            calls = [call(quick, 1), call(quick_async, 1), call(fails), call(quick, 5)]
            return await call_user_code_many(calls, timeout_s=5, threads=pool)
        finally:
            pool.close()

    outcomes = asyncio.run(main())
    assert all(isinstance(outcome, Outcome) for outcome in outcomes)
    done = [outcome for outcome in outcomes if isinstance(outcome, Outcome)]
    assert [(o.ok, o.value) for o in done if o.ok] == [(True, 2), (True, 3), (True, 10)]
    failed = done[2].value
    assert isinstance(failed, HookExecutionError) and isinstance(failed.__cause__, ValueError)


def test_an_async_call_past_its_time_limit_fails_alone() -> None:
    async def main() -> list[Outcome | asyncio.Future[Outcome]]:
        pool = HookThreads(2, spare=1)
        try:
            calls = [call(hangs_async), call(quick_async, 2)]
            return await call_user_code_many(calls, timeout_s=0.2, threads=pool)
        finally:
            pool.close()

    timed_out, fine = asyncio.run(main())
    assert isinstance(timed_out, Outcome) and not timed_out.ok
    assert isinstance(timed_out.value.__cause__, TimeoutError)
    assert isinstance(fine, Outcome) and (fine.ok, fine.value) == (True, 6)


def test_with_patience_the_slow_calls_come_back_as_futures() -> None:
    release = threading.Event()

    def slow() -> str:
        release.wait(5)
        return "late"

    async def main() -> tuple[list[object], object, float]:
        pool = HookThreads(2, spare=1)
        try:
            started = time.monotonic()
            outcomes = await call_user_code_many(
                [call(quick, 1), call(slow)], timeout_s=5, threads=pool, patience_s=0.1
            )
            waited = time.monotonic() - started
            release.set()
            late = outcomes[1]
            assert isinstance(late, asyncio.Future)
            return list(outcomes), await late, waited
        finally:
            pool.close()

    outcomes, late, waited = asyncio.run(main())
    first = outcomes[0]
    assert isinstance(first, Outcome) and (first.ok, first.value) == (True, 2)
    assert isinstance(late, Outcome) and (late.ok, late.value) == (True, "late")
    assert waited < 2.0  # did not wait for the slow call


def test_cancelling_the_caller_is_not_a_hook_timeout() -> None:
    async def main() -> None:
        pool = HookThreads(1, spare=1)
        try:
            task = asyncio.ensure_future(
                call_user_code_many([call(hangs_async)], timeout_s=30, threads=pool)
            )
            await asyncio.sleep(0.05)
            task.cancel()
            await task
        finally:
            pool.close()

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(main())


def test_async_calls_run_as_many_at_once_as_the_threads_and_queued_ones_do_not_time_out() -> None:
    running = [0]
    most = [0]

    async def takes_a_while() -> str:
        running[0] += 1
        most[0] = max(most[0], running[0])
        await asyncio.sleep(0.15)
        running[0] -= 1
        return "done"

    async def main() -> list[Outcome | asyncio.Future[Outcome]]:
        pool = HookThreads(2, spare=0)
        try:
            # Four calls, two at a time: the last two wait 0.15 s, then run well within 0.25 s.
            calls = [call(takes_a_while) for _ in range(4)]
            return await call_user_code_many(calls, timeout_s=0.25, threads=pool)
        finally:
            pool.close()

    outcomes = asyncio.run(main())
    assert [(o.ok, o.value) for o in outcomes if isinstance(o, Outcome)] == [(True, "done")] * 4
    assert most[0] == 2


def test_concurrent_batches_share_the_workers_concurrency() -> None:
    lock = threading.Lock()
    running = [0, 0]  # now, most

    def slow_sync() -> None:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1

    async def slow_async() -> None:
        running[0] += 1
        running[1] = max(running[1], running[0])
        await asyncio.sleep(0.05)
        running[0] -= 1

    async def main(fn: object) -> None:
        pool = HookThreads(2, spare=4)
        slots = asyncio.Semaphore(2)
        try:
            batches = [[call(fn) for _ in range(4)] for _ in range(3)]
            await asyncio.gather(
                *(
                    call_user_code_many(batch, timeout_s=5, threads=pool, slots=slots)
                    for batch in batches
                )
            )
        finally:
            pool.close()

    for fn in (slow_sync, slow_async):
        running[:] = [0, 0]
        asyncio.run(main(fn))
        assert running[1] == 2, fn


async def swallows_cancellation() -> str:
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        return "kept going"  # bad manners, but user code may do it
    return "slept"


def test_each_async_call_gets_its_full_time_limit_from_its_own_start() -> None:
    # One drainer (pool size 1): the calls run one after another, each with 0.3 s of its
    # own; the second hangs and must time out 0.3 s after *it* started, the third (after
    # it) must still run.
    async def main() -> tuple[list[Outcome | asyncio.Future[Outcome]], float]:
        pool = HookThreads(1, spare=1)
        try:
            started = time.monotonic()

            async def takes_0_2_s() -> str:
                await asyncio.sleep(0.2)
                return "done"

            calls = [call(takes_0_2_s), call(hangs_async), call(quick_async, 1)]
            outcomes = await call_user_code_many(calls, timeout_s=0.3, threads=pool)
            return outcomes, time.monotonic() - started
        finally:
            pool.close()

    (first, hung, last), elapsed = asyncio.run(main())
    assert isinstance(first, Outcome) and (first.ok, first.value) == (True, "done")
    assert isinstance(hung, Outcome) and isinstance(hung.value.__cause__, TimeoutError)
    assert isinstance(last, Outcome) and (last.ok, last.value) == (True, 3)
    assert 0.45 < elapsed < 2.0  # 0.2 s, then 0.3 s for the hung call


def test_a_call_that_swallows_its_timeout_does_not_break_the_next_calls() -> None:
    async def main() -> tuple[list[Outcome | asyncio.Future[Outcome]], int]:
        pool = HookThreads(1, spare=1)
        try:
            calls = [call(swallows_cancellation), call(quick_async, 2)]
            outcomes = await call_user_code_many(calls, timeout_s=0.2, threads=pool)
            task = asyncio.current_task()
            assert task is not None
            return outcomes, task.cancelling()
        finally:
            pool.close()

    (swallowed, after), cancelling = asyncio.run(main())
    assert isinstance(swallowed, Outcome) and (swallowed.ok, swallowed.value) == (
        True,
        "kept going",
    )
    assert isinstance(after, Outcome) and (after.ok, after.value) == (True, 6)
    assert cancelling == 0


def test_stopping_the_worker_during_an_overrun_still_stops_the_batch() -> None:
    async def main() -> None:
        pool = HookThreads(1, spare=1)
        try:
            calls = [call(hangs_async), call(hangs_async)]
            batch = asyncio.ensure_future(call_user_code_many(calls, timeout_s=0.1, threads=pool))
            await asyncio.sleep(0.1)  # the alarm rings about now: the first call overruns
            batch.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(batch, timeout=2)
        finally:
            pool.close()

    asyncio.run(main())


async def lets_a_cancellation_out() -> None:
    # A hook awaiting a task that something else cancelled: the CancelledError is its own.
    task = asyncio.ensure_future(asyncio.sleep(10))
    await asyncio.sleep(0)
    task.cancel()
    await task


@pytest.mark.parametrize("patience_s", [None, 0.5])
def test_a_hooks_own_cancellation_is_its_failure_and_the_batch_goes_on(
    patience_s: float | None,
) -> None:
    # One drainer: the call queued behind the one that lets a CancelledError out still
    # runs, and both outcomes come back (were the batch handed back instead, every hook
    # in it would run again on the reclaim).
    async def main() -> list[Outcome | asyncio.Future[Outcome]]:
        pool = HookThreads(1, spare=0)
        calls = [call(lets_a_cancellation_out), call(quick_async, 1)]
        try:
            async with asyncio.timeout(5):
                return await call_user_code_many(
                    calls, timeout_s=5, threads=pool, patience_s=patience_s
                )
        finally:
            pool.close()

    first, second = asyncio.run(main())
    assert isinstance(first, Outcome) and not first.ok
    assert isinstance(first.value, HookExecutionError)
    assert isinstance(first.value.__cause__, asyncio.CancelledError)
    assert second == Outcome(True, 3)
