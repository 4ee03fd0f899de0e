"""First attempts of a batch: what follows a success failing, whatever it raises, retries
that handler alone; its batch-mates are recorded once and never run again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import redis

from bus import Keys, connect_async
from bus.events import RunEvent, RunInfo
from bus.settings import BusSettings
from bus.states import RunState
from sensors.handlers import Handler
from sensors.hook_threads import HookThreads
from sensors.work import Work
from tests.conftest import TEST_PREFIX
from tests.ledger_records import is_recorded
from tests.sensors.dispatchers import make_dispatcher

KEYS = Keys(prefix=TEST_PREFIX)


def event(run_id: str) -> RunEvent:
    return RunEvent(
        seq=1,
        run=RunInfo(run_id=run_id, run_name=run_id, job_name="etl"),
        from_state=RunState.RUNNING,
        to_state=RunState.FAILED,
    )


def test_a_launch_failing_after_a_sensor_retries_it_alone(
    redis_url: str, redis_client: redis.Redis
) -> None:
    events = {run_id: event(run_id) for run_id in ("r0", "r1", "r2")}
    calls: list[str] = []
    launches: list[str] = []

    def sensor_for(run_id: str) -> Handler:
        def sensor() -> str:
            calls.append(run_id)
            return run_id

        return Handler(name="sensor:s", fn=sensor, build_args=lambda _: (), after=launch)

    async def launch(result: Any) -> None:
        launches.append(str(result))
        if result == "r1" and launches.count("r1") == 1:
            raise OSError("could not start the requested run")  # not a user-code error

    async def main() -> list[str]:
        client = connect_async(BusSettings(redis_url=redis_url))
        threads = HookThreads(2, spare=1)
        dispatcher = make_dispatcher(client, threads, concurrency=2)
        try:
            batch = [
                Work(events[run_id], [sensor_for(run_id)], "s", f"{n}-0")
                for n, run_id in enumerate(events)
            ]
            unfinished = await dispatcher.first_attempts(batch)
            await asyncio.gather(*(dispatcher.finish(u) for u in unfinished))
            return [str(u.work.event.run_id) for u in unfinished]
        finally:
            threads.close()
            await client.aclose()

    assert asyncio.run(main()) == ["r1"]
    assert sorted(calls) == ["r0", "r1", "r1", "r2"]  # only r1 ran again
    assert sorted(launches) == ["r0", "r1", "r1", "r2"]
    for ev in events.values():
        assert is_recorded(redis_client, KEYS, ev, "sensor:s")


def test_a_redelivery_finds_its_record_whatever_the_engine_hosts_clock_said(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # The engine's host clock ran three hours ahead: the event "occurred" in a slot after
    # the one its record went to (the Redis server's clock). The entry's id, added by that
    # server, still bounds where the record can be.
    seconds, _ = redis_client.time()
    ahead = event("r-ahead").model_copy(
        update={"occurred_at": datetime.fromtimestamp(seconds + 3 * 3600, UTC)}
    )
    # The same entry, handled, then reclaimed.
    assert runs_of_one_hook(redis_url, ahead, [f"{seconds * 1000}-0"] * 2) == 1


def test_a_replay_hours_later_finds_its_record_by_when_the_event_occurred(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # A dead-letter replay (or a late resend) is a new entry, added hours after the
    # original's record: its event's occurred_at, not the new entry's id, bounds the look.
    seconds, _ = redis_client.time()
    original = event("r-replayed").model_copy(
        update={"occurred_at": datetime.fromtimestamp(seconds, UTC)}
    )
    entries = [f"{seconds * 1000}-0", f"{(seconds + 3 * 3600) * 1000}-0"]
    assert runs_of_one_hook(redis_url, original, entries) == 1


def runs_of_one_hook(redis_url: str, ev: RunEvent, entry_ids: list[str]) -> int:
    """How many times one hook ran when ``ev`` was delivered as each of ``entry_ids`` in
    turn (each delivery a batch of its own, asking the ledger first)."""
    calls: list[str] = []
    handler = Handler(name="hook:h", fn=lambda: calls.append("ran"), build_args=lambda _: ())

    async def main() -> None:
        client = connect_async(BusSettings(redis_url=redis_url))
        threads = HookThreads(2, spare=1)
        dispatcher = make_dispatcher(client, threads, concurrency=2)
        try:
            for entry_id in entry_ids:
                await dispatcher.first_attempts([Work(ev, [handler], "s", entry_id)])
        finally:
            threads.close()
            await client.aclose()

    asyncio.run(main())
    return len(calls)
