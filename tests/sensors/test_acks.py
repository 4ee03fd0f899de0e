"""Acks ride on a group's next read, go out alone after the linger, and are never lost;
and a read loop reads on as soon as its batch is under way."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
import redis

import sensors.subscription as subscription
from bus import HOOKS_GROUP, Keys
from bus.consumer import Delivery
from bus.utils import text
from engine import EngineSettings
from sensors import CodeLocation, Worker, WorkerSettings
from sensors.intake import Intake
from sensors.subscription import Subscription
from tests.code_locations import basic
from tests.conftest import TEST_PREFIX

KEYS = Keys(prefix=TEST_PREFIX)
STREAM = KEYS.events_stream(0)


def pending(client: redis.Redis, group: str = HOOKS_GROUP) -> int:
    return int(client.xpending(STREAM, group)["pending"])


async def wait_for(check: object, *, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def quiet_run_handled(
    settings: WorkerSettings, engine_settings: EngineSettings, client: redis.Redis
) -> AsyncIterator[Worker]:
    """A running worker that has just handled the three events of a ``quiet`` run; stopped
    (and its stop awaited) on leaving."""
    worker = Worker(CodeLocation.load("tests.code_locations.basic"), settings)
    runner = asyncio.create_task(worker.run())
    try:
        await wait_for(lambda: client.exists(KEYS.worker_heartbeat("test-worker")))
        await asyncio.to_thread(basic.quiet.execute_in_process, settings=engine_settings)
        await wait_for(lambda: worker.handled >= 3)
        yield worker
    finally:
        worker.stop()
        await runner
        await worker.close()


def test_a_finished_entry_is_acked_by_the_groups_next_read(
    engine_settings: EngineSettings,
    worker_settings: WorkerSettings,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A linger far longer than the test: only a read can carry the acks.
    monkeypatch.setattr(subscription, "ACK_LINGER_S", 60.0)
    # Within 3 s: before ``keep_fresh`` flushes on its own (every claim_idle_ms / 3 = 5 s).
    settings = worker_settings.model_copy(update={"block_ms": 1000})

    async def main() -> tuple[int, int]:
        async with quiet_run_handled(settings, engine_settings, redis_client):
            held = pending(redis_client)
            # The read that follows the group's next (empty, after ``block_ms``) wait
            # carries them.
            await wait_for(lambda: pending(redis_client) == 0, timeout_s=3)
            return held, pending(redis_client)

    held, after = asyncio.run(main())
    assert held > 0, "the acks went out before any read: the linger did not hold them"
    assert after == 0


def test_without_a_read_the_acks_go_out_after_the_linger(
    engine_settings: EngineSettings,
    worker_settings: WorkerSettings,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(subscription, "ACK_LINGER_S", 0.2)
    # Reads block for a minute: only the lingering flush can ack.
    settings = worker_settings.model_copy(update={"block_ms": 60_000})

    async def main() -> float:
        async with quiet_run_handled(settings, engine_settings, redis_client):
            handled_at = time.monotonic()
            await wait_for(lambda: pending(redis_client) == 0, timeout_s=3)
            return time.monotonic() - handled_at

    assert asyncio.run(main()) < 2  # the linger (0.2 s), not keep_fresh (5 s)


def test_stopping_sends_the_lingering_acks_at_once(
    engine_settings: EngineSettings,
    worker_settings: WorkerSettings,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(subscription, "ACK_LINGER_S", 60.0)
    settings = worker_settings.model_copy(update={"block_ms": 60_000})

    async def main() -> tuple[int, float]:
        async with quiet_run_handled(settings, engine_settings, redis_client):
            held = pending(redis_client)
            stopping = time.monotonic()
        return held, time.monotonic() - stopping

    held, stop_s = asyncio.run(main())
    assert held > 0
    assert stop_s < 10
    assert pending(redis_client) == 0


def test_acks_a_failed_read_carried_are_queued_again(
    worker_settings: WorkerSettings, redis_client: redis.Redis
) -> None:
    async def main() -> tuple[list[str], str]:
        worker = Worker(CodeLocation.load("tests.code_locations.basic"), worker_settings)
        await worker.start()
        hooks = next(sub for sub in worker.subscriptions if sub.group == HOOKS_GROUP)
        entry_id = text(redis_client.xadd(STREAM, {b"event": b"{}"}))
        [delivery] = await hooks.consumer.read(count=10, block_ms=None)
        hooks.hold(delivery)
        hooks.finish(delivery)
        redis_client.xgroup_destroy(STREAM, HOOKS_GROUP)  # the read with the acks fails
        try:
            with pytest.raises(redis.ResponseError, match="NOGROUP"):
                await worker._next_batch(hooks)
            return hooks.finished[STREAM], entry_id
        finally:
            await worker.close()

    queued, entry_id = asyncio.run(main())
    assert queued == [entry_id]


def test_a_batch_that_hits_a_bug_lets_its_read_loop_go_on_while_it_retries_one_by_one(
    worker_settings: WorkerSettings, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The read loop waits for a batch to ask the ledger before reading on; a batch that a
    # bug of ours sends to be handled again entry by entry must not hold it that long.
    release = asyncio.Event()
    original = Intake.process

    async def process(
        intake: Intake, sub: Subscription, deliveries: list[Delivery], **kwargs: object
    ) -> object:
        if len(deliveries) > 1:
            raise RuntimeError("a bug of ours")
        await release.wait()  # one entry at a time: slow
        return await original(intake, sub, deliveries, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Intake, "process", process)

    async def main() -> bool:
        worker = Worker(CodeLocation.load("tests.code_locations.basic"), worker_settings)
        await worker.start()
        hooks = next(sub for sub in worker.subscriptions if sub.group == HOOKS_GROUP)
        for _ in range(3):
            redis_client.xadd(STREAM, {b"event": b"{}"})
        deliveries = await hooks.consumer.read(count=10, block_ms=None)
        try:
            started = await worker.intake.hand_out(hooks, deliveries)
            async with asyncio.timeout(5):
                await started.wait()
            return all(not task.done() for task in worker.intake.tasks)
        finally:
            release.set()
            await asyncio.gather(*worker.intake.tasks)
            await worker.close()

    assert asyncio.run(main()), "the batch ended before the read loop could go on"
