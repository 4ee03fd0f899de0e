"""The hooks group asks the ledger only where an entry may have been handled before.

A first delivery (``bus.consumer.Delivery.first_delivery``) runs its hooks at once; a copy
of an event, a reclaimed entry and a batch handled again after a bug of ours are checked,
so none of them repeats a hook that already succeeded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import redis
from redis.typing import StreamIdT

from bus import HOOKS_GROUP, Keys
from bus.consumer import Delivery
from bus.runs import EVENT_FIELD
from engine import EngineSettings
from sensors import CodeLocation, Worker, WorkerSettings
from sensors.intake import Intake
from sensors.subscription import Subscription
from tests.code_locations import basic
from tests.conftest import TEST_PREFIX
from tests.streams import read_events, read_stream

KEYS = Keys(prefix=TEST_PREFIX)
STREAM = KEYS.events_stream(0)
#: What the ``etl`` run calls: five hooks and one sensor (``etl_failures``).
ETL_CALLS = 6


@pytest.fixture(autouse=True)
def clear_calls() -> None:
    basic.CALLS.clear()


def with_worker(settings: WorkerSettings, steps: Callable[[Worker], Awaitable[None]]) -> None:
    """Run ``steps`` against one worker of the basic location (its groups at the start)."""

    async def main() -> None:
        worker = Worker(CodeLocation.load("tests.code_locations.basic"), settings)
        try:
            await worker.start()
            await steps(worker)
        finally:
            await worker.close()

    asyncio.run(main())


async def run_etl(settings: EngineSettings) -> None:
    """The basic location's ``etl`` run (it fails), in a thread: the worker's loop runs on."""
    await asyncio.to_thread(
        lambda: basic.etl.execute_in_process(raise_on_error=False, settings=settings)
    )


def add_copies(client: redis.Redis) -> None:
    """Each event on the stream again, unmarked, as a publisher's resend or ``hookbus dlq
    replay`` adds it."""
    for _, fields in read_stream(client, STREAM):
        client.xadd(STREAM, {EVENT_FIELD: fields[EVENT_FIELD]})


def hooks_of(worker: Worker) -> Subscription:
    return next(sub for sub in worker.subscriptions if sub.group == HOOKS_GROUP)


def test_a_first_delivery_runs_its_hooks_without_asking_the_ledger(
    engine_settings: EngineSettings, worker_settings: WorkerSettings, redis_client: redis.Redis
) -> None:
    async def steps(worker: Worker) -> None:
        await run_etl(engine_settings)
        # A ledger that says every handler already ran on every event: only a handler
        # whose entry is checked can see it.
        for event in read_events(redis_client, STREAM):
            for ref in event.hooks_triggered():
                redis_client.set(KEYS.handled(event.event_id, f"hook:{ref.ref}"), "{}")
            redis_client.set(KEYS.handled(event.event_id, "sensor:etl_failures"), "{}")
        await worker.run_until_idle()

    with_worker(worker_settings, steps)

    # Every hook ran (the hooks group trusts a first delivery); the sensor's group asked.
    assert sorted(name for name, _ in basic.CALLS) == [
        "async_op_hook",
        "notify",
        "on_op_success",
        "on_op_success",
        "page_on_failure",
    ]


def test_a_copy_of_an_event_is_checked_and_repeats_no_hook(
    engine_settings: EngineSettings, worker_settings: WorkerSettings, redis_client: redis.Redis
) -> None:
    async def steps(worker: Worker) -> None:
        await run_etl(engine_settings)
        await worker.run_until_idle()
        add_copies(redis_client)
        await worker.run_until_idle()

    with_worker(worker_settings, steps)

    assert len(basic.CALLS) == ETL_CALLS


def test_a_reclaimed_entry_whose_hooks_succeeded_repeats_none(
    engine_settings: EngineSettings, worker_settings: WorkerSettings, redis_client: redis.Redis
) -> None:
    async def steps(worker: Worker) -> None:
        await run_etl(engine_settings)
        await worker.run_until_idle()
        # As if a worker had run the hooks and died before its acks: every entry pending
        # again, in a dead consumer's name, idle for long.
        ids: list[StreamIdT] = [entry_id for entry_id, _ in read_stream(redis_client, STREAM)]
        redis_client.xclaim(STREAM, HOOKS_GROUP, "dead", 0, ids, idle=60_000, force=True)
        hooks = hooks_of(worker)
        reclaimed, _ = await hooks.reclaim(min_idle_ms=1_000, count=100, max_deliveries=5)
        assert len(reclaimed) == len(ids)
        await worker.intake.hand_out(hooks, reclaimed)
        await asyncio.gather(*worker.intake.tasks)

    with_worker(worker_settings, steps)

    assert len(basic.CALLS) == ETL_CALLS


def test_a_batch_handled_again_after_a_bug_of_ours_repeats_no_hook(
    engine_settings: EngineSettings,
    worker_settings: WorkerSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = Intake.process

    async def process(
        intake: Intake, sub: Subscription, deliveries: list[Delivery], **kwargs: object
    ) -> object:
        result = await original(intake, sub, deliveries, **kwargs)  # type: ignore[arg-type]
        if len(deliveries) > 1:
            raise RuntimeError("a bug of ours, after the batch's hooks ran")
        return result

    monkeypatch.setattr(Intake, "process", process)

    async def steps(worker: Worker) -> None:
        await run_etl(engine_settings)
        await worker.run_until_idle()  # each batch fails, then its entries go one by one

    with_worker(worker_settings, steps)

    assert len(basic.CALLS) == ETL_CALLS


def test_two_copies_of_an_event_in_one_batch_run_its_hooks_once(
    engine_settings: EngineSettings, worker_settings: WorkerSettings, redis_client: redis.Redis
) -> None:
    async def steps(worker: Worker) -> None:
        await run_etl(engine_settings)
        # Before the worker reads any: as a resend after a lost reply lands, one read
        # takes both copies before either is recorded.
        add_copies(redis_client)
        await worker.run_until_idle()

    with_worker(worker_settings, steps)

    assert len(basic.CALLS) == ETL_CALLS
