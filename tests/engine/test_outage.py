"""Alerting never blocks the pipeline: with Redis gone, events wait in the spool."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bus import BusUnavailableError, Keys, OpEvent, RunEvent
from bus.redis_server import RedisServer
from engine import EngineSettings
from engine.launch import flush_spool_dir
from sensors import CodeLocation, Worker, WorkerSettings
from tests.code_locations import outage
from tests.streams import read_events

KEYS = Keys(prefix="outage")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    # appendonly: a stop() then start() brings the data back, as a production restart does.
    with RedisServer(appendonly=True, directory=tmp_path / "redis") as private:
        outage.SERVER = private
        outage.CALLS.clear()
        yield private
    outage.SERVER = None


def settings_for(server: RedisServer, tmp_path: Path) -> EngineSettings:
    return EngineSettings(
        redis_url=server.url,
        key_prefix="outage",
        spool_dir=tmp_path / "spool",
        redis_timeout_s=0.5,
        heartbeat_interval_s=0.1,
    )


def work_off(server: RedisServer) -> int:
    async def burst() -> int:
        settings = WorkerSettings(redis_url=server.url, key_prefix="outage", consumer_name="w")
        worker = Worker(CodeLocation.load("tests.code_locations.outage"), settings)
        try:
            return await worker.run_until_idle()
        finally:
            await worker.close()

    return asyncio.run(burst())


def steps(events: list[RunEvent | OpEvent]) -> list[tuple[str, str]]:
    return [(e.op.step_key if isinstance(e, OpEvent) else "run", str(e.to_state)) for e in events]


def test_the_run_completes_while_redis_is_down_and_every_event_arrives_in_order_once(
    server: RedisServer, tmp_path: Path
) -> None:
    result = outage.outage.execute_in_process(settings=settings_for(server, tmp_path))

    assert result.output == 3
    client = redis.Redis.from_url(server.url)
    events = read_events(client, KEYS.events_stream(0))
    client.close()
    assert [e.seq for e in events] == list(range(1, 16))
    assert steps(events)[4:12] == [
        ("stop_redis", "running"),
        ("stop_redis", "completed"),
        ("during", "running"),
        ("during", "completed"),
        ("fails_during", "running"),
        ("fails_during", "failed"),
        ("start_redis", "running"),
        ("start_redis", "completed"),
    ]
    assert not list((tmp_path / "spool").glob("*.jsonl"))  # delivered, so removed
    work_off(server)
    work_off(server)  # a second pass runs nothing again
    assert sorted(outage.CALLS) == sorted(
        [("op_done", key) for key in ["before", "stop_redis", "during", "start_redis", "during_2"]]
        + [("op_failed", "fails_during"), ("run_done", "Completed")]
    )


def test_events_left_in_the_spool_are_published_by_hookbus_spool_flush(
    server: RedisServer, tmp_path: Path
) -> None:
    settings = settings_for(server, tmp_path)
    server.stop()

    result = outage.offline.execute_in_process(settings=settings)

    assert result.output == 2
    [spooled] = (tmp_path / "spool").glob("*.jsonl")
    assert spooled.name == f"{result.run_id}.jsonl"
    server.start()
    assert flush_spool_dir(settings) == 5
    client = redis.Redis.from_url(server.url)
    events = read_events(client, KEYS.events_stream(0))
    client.close()
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert not spooled.exists()
    work_off(server)
    assert outage.CALLS == [("op_done", "during")]


def test_spool_flush_without_redis_says_so_and_keeps_the_files(
    server: RedisServer, tmp_path: Path
) -> None:
    settings = settings_for(server, tmp_path)
    server.stop()
    outage.offline.execute_in_process(settings=settings)

    with pytest.raises(BusUnavailableError, match=r"not flushed: Redis did not answer: got "):
        flush_spool_dir(settings)
    assert len(list((tmp_path / "spool").glob("*.jsonl"))) == 1
