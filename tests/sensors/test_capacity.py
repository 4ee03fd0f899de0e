"""Many read loops sharing a small in-flight budget never stall one another."""

from __future__ import annotations

import asyncio

import pytest
import redis

from engine import EngineSettings
from sensors import CodeLocation, Worker, WorkerSettings
from sensors.capacity import Capacity
from tests.code_locations import basic


def test_read_loops_on_many_shards_with_a_small_budget_handle_everything(
    engine_settings: EngineSettings, worker_settings: WorkerSettings, redis_client: redis.Redis
) -> None:
    # Four shards × (hooks + a sensor group) = eight read loops, each reading batches as big
    # as the whole budget: taking it slot by slot, they used to split it and all wait.
    settings = worker_settings.model_copy(
        update={"stream_shards": 4, "read_count": 8, "max_in_flight": 8, "block_ms": 50}
    )
    engines = engine_settings.model_copy(update={"stream_shards": 4})
    basic.CALLS.clear()

    async def main() -> int:
        worker = Worker(CodeLocation.load("tests.code_locations.basic"), settings)
        await worker.start()
        for _ in range(12):
            await asyncio.to_thread(
                basic.etl.execute_in_process, raise_on_error=False, settings=engines
            )
        runner = asyncio.create_task(worker.run())
        try:
            async with asyncio.timeout(30):
                while worker.handled < expected(redis_client, settings):
                    await asyncio.sleep(0.05)
        finally:
            worker.stop()
            await runner
            await worker.close()
        return worker.handled

    handled = asyncio.run(main())
    assert handled == expected(redis_client, settings)
    assert len([name for name, _ in basic.CALLS if name == "etl_failures"]) == 12


def expected(client: redis.Redis, settings: WorkerSettings) -> int:
    """Entries to handle: every event, once per group (hooks and the sensor's)."""
    groups = 2
    return groups * sum(int(client.xlen(s)) for s in settings.keys.all_event_streams())


def test_capacity_waits_until_enough_slots_are_given_back() -> None:
    async def main() -> list[str]:
        capacity = Capacity(4)
        seen: list[str] = []
        await capacity.take(3)

        async def batch_of_three() -> None:
            await capacity.take(3)  # 1 free: waits for two more
            seen.append("taken")

        waiting = asyncio.create_task(batch_of_three())
        await asyncio.sleep(0.01)
        capacity.give()
        await asyncio.sleep(0.01)
        seen.append(f"free={capacity.free}")  # 2 free: still waiting
        capacity.give()
        await asyncio.wait_for(waiting, 1)
        seen.append(f"free={capacity.free}")
        return seen

    assert asyncio.run(main()) == ["free=2", "taken", "free=0"]


def test_capacity_refuses_a_batch_larger_than_itself() -> None:
    with pytest.raises(ValueError, match="cannot take 5 slots of 4"):
        asyncio.run(Capacity(4).take(5))
