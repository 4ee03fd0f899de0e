"""A notification rule's group starts a run's end after the run's earlier events in the
batch; everything else (other runs, a run's several op failures) still goes together."""

from __future__ import annotations

import asyncio
import time

import redis

from bus import Keys, connect_async
from bus.consumer import Consumer, Delivery
from bus.deadletter import DeadLetters
from bus.events import BusEvent, OpEvent, OpInfo, RunEvent, RunInfo, encode_event
from bus.runs import EVENT_FIELD
from bus.settings import BusSettings
from bus.states import OpState, RunState
from sensors.handlers import Handler, MissingHook
from sensors.hook_threads import HookThreads
from sensors.intake import Intake
from sensors.subscription import Subscription
from tests.conftest import TEST_PREFIX
from tests.sensors.dispatchers import make_dispatcher

KEYS = Keys(prefix=TEST_PREFIX)


def run_info(run_id: str) -> RunInfo:
    return RunInfo(run_id=run_id, run_name=run_id, job_name="etl")


def op_failed(run_id: str, op: str = "load") -> OpEvent:
    return OpEvent(
        seq=3,
        run=run_info(run_id),
        op=OpInfo(name=op, step_key=op),
        from_state=OpState.RUNNING,
        to_state=OpState.FAILED,
    )


def run_failed(run_id: str) -> RunEvent:
    return RunEvent(
        seq=4, run=run_info(run_id), from_state=RunState.RUNNING, to_state=RunState.FAILED
    )


def handle_in_one_batch(
    redis_url: str, events: list[BusEvent], *, in_run_order: bool
) -> list[tuple[str, str, float, float]]:
    """Each event's one async handler takes 0.1 s; returns (run, type, start, end) each."""
    spans: list[tuple[str, str, float, float]] = []

    def select(event: BusEvent) -> tuple[list[Handler], list[MissingHook]]:
        async def note() -> None:
            started = time.monotonic()
            await asyncio.sleep(0.1)  # a Slack call, say
            spans.append((str(event.run_id), event.type, started, time.monotonic()))

        return [Handler(name="rule:r:slack", fn=note, build_args=lambda _: ())], []

    async def main() -> None:
        client = connect_async(BusSettings(redis_url=redis_url))
        threads = HookThreads(4, spare=1)
        dispatcher = make_dispatcher(client, threads, concurrency=4)
        intake = Intake(dispatcher, DeadLetters(client, keys=KEYS), max_in_flight=16)
        consumer = Consumer(client, streams=["s"], group="notify:r", consumer="w")
        subscription = Subscription(consumer, select, in_run_order=in_run_order)
        deliveries = [
            Delivery("s", f"{n + 1}-0", encode_event(event)) for n, event in enumerate(events)
        ]
        try:
            left = await intake.process(subscription, deliveries)
            await asyncio.gather(
                *(dispatcher.finish(u) for handlers in left.retrying.values() for u in handlers)
            )
        finally:
            threads.close()
            await client.aclose()

    asyncio.run(main())
    return spans


def test_a_runs_end_starts_after_its_op_failure_and_other_runs_go_meanwhile(
    redis_url: str, redis_client: redis.Redis
) -> None:
    spans = handle_in_one_batch(
        redis_url, [op_failed("a"), op_failed("b"), run_failed("a")], in_run_order=True
    )
    by = {(run, kind): (start, end) for run, kind, start, end in spans}
    assert by["a", "run"][0] >= by["a", "op"][0] + 0.045  # waited (50 ms patience), not raced
    assert abs(by["b", "op"][0] - by["a", "op"][0]) < 0.045  # another run: at once


def test_without_run_order_every_handler_of_a_batch_starts_at_once(
    redis_url: str, redis_client: redis.Redis
) -> None:
    spans = handle_in_one_batch(redis_url, [op_failed("c"), run_failed("c")], in_run_order=False)
    starts = [start for *_, start, _ in spans]
    assert max(starts) - min(starts) < 0.045


def test_a_runs_first_failure_leads_then_its_others_then_its_end(
    redis_url: str, redis_client: redis.Redis
) -> None:
    spans = handle_in_one_batch(
        redis_url,
        [
            op_failed("d", "load"),
            op_failed("d", "publish"),
            op_failed("d", "notify"),
            run_failed("d"),
        ],
        in_run_order=True,
    )
    starts = sorted((start, kind) for _, kind, start, _ in spans)
    first, second, third, end = starts
    assert first[1] == "op" and second[0] >= first[0] + 0.045  # the first op leads alone
    assert third[0] - second[0] < 0.045  # the run's other failures go together
    assert end[1] == "run" and end[0] >= third[0] + 0.045  # the end comes last


def test_a_bug_in_a_later_wave_runs_no_earlier_handler_twice(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # The run's op failure starts first and outlives the batch's patience; its end's
    # handler then hits a bug of ours (its arguments cannot be built). The batch is
    # handled again one entry at a time: the op failure's handler must not run again.
    started: list[str] = []

    def select(event: BusEvent) -> tuple[list[Handler], list[MissingHook]]:
        async def note() -> None:
            started.append(event.type)
            await asyncio.sleep(0.2)  # a Slack call, say

        def broken(_resources: object) -> tuple[object, ...]:
            raise RuntimeError("a bug of ours, building the end's arguments")

        build_args = broken if isinstance(event, RunEvent) else (lambda _: ())
        return [Handler(name="rule:r:slack", fn=note, build_args=build_args)], []

    async def main() -> None:
        client = connect_async(BusSettings(redis_url=redis_url))
        threads = HookThreads(4, spare=1)
        intake = Intake(
            make_dispatcher(client, threads, concurrency=4),
            DeadLetters(client, keys=KEYS),
            max_in_flight=16,
        )
        consumer = Consumer(client, streams=["s"], group="notify:r", consumer="w")
        await consumer.ensure_group()
        for event in (op_failed("e"), run_failed("e")):
            await client.xadd("s", {EVENT_FIELD: encode_event(event)})
        subscription = Subscription(consumer, select, in_run_order=True)
        try:
            await intake.hand_out(subscription, await consumer.read(count=10, block_ms=None))
            async with asyncio.timeout(10):
                while intake.tasks:
                    await asyncio.sleep(0.01)
        finally:
            threads.close()
            await client.aclose()

    asyncio.run(main())

    assert started == ["op"]
