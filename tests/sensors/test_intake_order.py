"""The hooks group's batch goes first when every group reads the same entries at once."""

from __future__ import annotations

import asyncio

from bus import connect_async
from bus.consumer import Consumer, Delivery
from bus.deadletter import DeadLetters
from bus.events import BusEvent, OpEvent, OpInfo, RunInfo, encode_event
from bus.settings import BusSettings
from bus.states import OpState
from sensors.handlers import Handler, MissingHook
from sensors.hook_threads import HookThreads
from sensors.intake import Intake
from sensors.subscription import Selector, Subscription
from tests.sensors.dispatchers import KEYS, make_dispatcher


def test_a_leading_groups_batch_is_handled_before_one_read_just_before_it(
    redis_url: str,
) -> None:
    failed = OpEvent(
        seq=3,
        run=RunInfo(run_id="r1", run_name="r1", job_name="etl"),
        op=OpInfo(name="load", step_key="load"),
        from_state=OpState.RUNNING,
        to_state=OpState.FAILED,
    )
    order: list[str] = []

    def noting(group: str) -> Selector:
        def select(event: BusEvent) -> tuple[list[Handler], list[MissingHook]]:
            order.append(group)
            return [], []

        return select

    async def main() -> None:
        client = connect_async(BusSettings(redis_url=redis_url))
        threads = HookThreads(2, spare=1)
        intake = Intake(
            make_dispatcher(client, threads, concurrency=2),
            DeadLetters(client, keys=KEYS),
            max_in_flight=16,
        )
        sensor = Subscription(
            Consumer(client, streams=["s"], group="sensor:x", consumer="w"), noting("sensor")
        )
        hooks = Subscription(
            Consumer(client, streams=["s"], group="hooks", consumer="w"),
            noting("hooks"),
            leads=True,
        )
        try:
            # The sensor group's read came back first, in the same turn of the loop.
            for subscription in (sensor, hooks):
                await intake.hand_out(subscription, [Delivery("s", "1-0", encode_event(failed))])
            await asyncio.gather(*intake.tasks)
            for subscription in (sensor, hooks):
                await subscription.flush_acks()
        finally:
            threads.close()
            await client.aclose()

    asyncio.run(main())

    assert order == ["hooks", "sensor"]
