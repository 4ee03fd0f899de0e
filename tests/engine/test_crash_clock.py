"""No false crashes: deadlines on the Redis server's clock, outages, late engine writes."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, cast

import pytest
import redis
import redis.asyncio as aioredis

from bus import Keys, OpEvent, RunEvent, RunInfo, RunState, encode_event
from bus.events import CrashInfo
from bus.publisher import Publisher
from bus.redis_server import RedisServer
from bus.runs import RunRecord
from bus.spool import SpoolFile, flush_spool
from engine.heartbeat import Heartbeat
from engine.supervise import claim_and_publish
from sensors.crash_detection import CrashDetector, publish_lost_runs
from tests.conftest import TEST_PREFIX
from tests.engine.test_crash import crashed, hookbus_run, live_record, run_config, run_events
from tests.processes import wait_until, worker_process

KEYS = Keys(prefix=TEST_PREFIX)
#: The engine's clock an hour behind the Redis server's (and the worker's).
SKEW_S = 3600.0


def running_event(run_id: str, seq: int = 1) -> RunEvent:
    run = RunInfo(run_id=run_id, run_name=f"hanging-{run_id}", job_name="hanging")
    return RunEvent(seq=seq, run=run, from_state=RunState.PENDING, to_state=RunState.RUNNING)


def record_for(event: RunEvent) -> RunRecord:
    return RunRecord(run=event.run, seq=event.seq, state=event.to_state, pid=1, host="here")


def lost_runs(redis_url: str) -> list[str]:
    async def detect() -> list[str]:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await publish_lost_runs(client, KEYS, consumer="w1")
        finally:
            await client.aclose()

    return asyncio.run(detect())


def test_a_deadline_written_by_an_engine_with_a_slow_clock_has_not_passed(
    redis_client: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() - SKEW_S)
    publisher = Publisher(redis_client, keys=KEYS, heartbeat_timeout_s=5)
    event = running_event("r-skewed")
    assert publisher.publish(event, record=record_for(event))
    beat = Heartbeat(
        publisher, keys=KEYS, run_id="r-skewed", interval_s=1, timeout_s=5, on_cancel=print
    )
    beat.beat()
    monkeypatch.undo()

    score = redis_client.zscore(KEYS.runs_alive_for_run("r-skewed"), "r-skewed")
    assert score is not None and 0 < score - time.time() <= 5.5
    assert lost_runs(redis_url) == []


def test_a_run_declared_crashed_is_not_brought_back_by_its_engine(
    redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    publisher = Publisher(redis_client, keys=KEYS, heartbeat_timeout_s=5)
    event = running_event("r-late")
    assert publisher.publish(event, record=record_for(event))
    crash = CrashInfo(reason="heartbeat_lost", detected_by="worker:w1")
    assert claim_and_publish(redis_client, KEYS, "r-late", crash)

    # The engine was cut off; it comes back, beats and publishes as if nothing happened.
    beat = Heartbeat(
        publisher, keys=KEYS, run_id="r-late", interval_s=1, timeout_s=5, on_cancel=print
    )
    beat.beat()
    assert publisher.crashed_by_others
    later = running_event("r-late", seq=2).model_copy(update={"to_state": RunState.FAILED})
    publisher.publish(later, record=record_for(later))

    assert redis_client.zscore(KEYS.runs_alive_for_run("r-late"), "r-late") is None
    assert RunRecord.from_hash(cast(Any, redis_client.hgetall(KEYS.run_record("r-late")))) == (
        record_for(event)
    )
    assert [e.to_state for e in run_events(redis_client, "r-late")] == ["running", "crashed"]
    assert "r-late was declared crashed" in caplog.text


def test_a_record_write_after_the_claim_writes_nothing_and_tells_the_engine(
    redis_client: redis.Redis,
) -> None:
    publisher = Publisher(redis_client, keys=KEYS, heartbeat_timeout_s=5)
    event = running_event("r-flush")
    assert publisher.publish(event, record=record_for(event))
    crash = CrashInfo(reason="heartbeat_lost", detected_by="worker:w1")
    assert claim_and_publish(redis_client, KEYS, "r-flush", crash)

    op_started = running_event("r-flush", seq=2)
    publisher.publish(op_started, record=record_for(op_started))

    assert publisher.crashed_by_others
    assert redis_client.zscore(KEYS.runs_alive_for_run("r-flush"), "r-flush") is None
    assert redis_client.hget(KEYS.run_record("r-flush"), "seq") == b"1"
    assert [e.to_state for e in run_events(redis_client, "r-flush")] == ["running", "crashed"]


def test_the_detector_claims_nothing_until_its_link_to_redis_was_steady_a_timeout(
    redis_client: redis.Redis, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    run = RunInfo(run_id="r-gap", run_name="hanging-r-gap", job_name="hanging")
    record = RunRecord(run=run, seq=1, state=RunState.RUNNING, pid=1, host="gone")
    redis_client.hset(KEYS.run_record("r-gap"), mapping=cast(Any, record.to_hash()))
    redis_client.zadd(KEYS.runs_alive(0), {"r-gap": time.time() - 1})
    clock = [100.0]

    async def ticks(moments: list[float]) -> list[list[str]]:
        client = aioredis.Redis.from_url(redis_url)
        detector = CrashDetector(
            client, KEYS, consumer="w1", heartbeat_timeout_s=2, clock=lambda: clock[0]
        )
        out = []
        try:
            for moment in moments:
                clock[0] = moment
                out.append(await detector.run_once())
        finally:
            await client.aclose()
        return out

    # A gap longer than half the timeout (an outage) restarts the wait.
    moments = [100.0, 100.9, 101.8, 103.0, 103.9, 104.8, 105.1]
    with caplog.at_level(logging.DEBUG, logger="sensors.crash_detection"):
        assert asyncio.run(ticks(moments)) == [[], [], [], [], [], [], ["r-gap"]]

    # The wait at start is normal (DEBUG); only the one after an outage is worth INFO.
    waits = [r for r in caplog.records if "crash detection starts in" in r.getMessage()]
    assert [(r.levelname, r.getMessage().endswith("(link to Redis up)")) for r in waits] == [
        ("DEBUG", True),
        ("INFO", False),
    ]


def test_a_redis_outage_longer_than_the_heartbeat_timeout_is_not_a_crash(tmp_path: Path) -> None:
    timing = {"HOOKBUS_HEARTBEAT_TIMEOUT_S": "2", "HOOKBUS_HEARTBEAT_INTERVAL_S": "0.8"}
    worker_env = {
        **timing,
        "HOOKBUS_CRASH_CHECK_INTERVAL_S": "0.1",
        "HOOKBUS_RECONNECT_MAX_S": "0.2",
    }
    config, marker = run_config(tmp_path)
    with RedisServer(appendonly=True, directory=tmp_path / "redis") as server:
        client = redis.Redis.from_url(server.url)
        with (
            worker_process(
                "tests.code_locations.lifecycle",
                redis_url=server.url,
                prefix=TEST_PREFIX,
                env=worker_env,
            ),
            hookbus_run(server.url, tmp_path, config, env=timing) as parent,
        ):
            run_id = live_record(client).run.run_id
            wait_until(marker.exists, what="the hang op to start")
            server.stop()
            time.sleep(3.5)  # longer than the heartbeat timeout: every deadline passes
            server.start()
            time.sleep(2.5)  # the worker's crash check and the engine's heartbeat race
            marker.unlink()
            assert parent.wait(timeout=20) == 0

            def finished() -> list[RunEvent | OpEvent]:
                events = run_events(client, run_id)
                ended = any(isinstance(e, RunEvent) and e.to_state.is_terminal for e in events)
                return events if ended else []

            events = wait_until(finished, what="the run's terminal event")
            assert crashed(client, run_id) is None
            last = events[-1]
            assert isinstance(last, RunEvent) and last.to_state == "completed"
            assert client.zscore(KEYS.runs_alive_for_run(run_id), run_id) is None
        client.close()


def test_a_spool_left_by_a_run_declared_crashed_is_dropped_not_published(
    redis_client: redis.Redis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    publisher = Publisher(redis_client, keys=KEYS, heartbeat_timeout_s=5)
    event = running_event("r-spooled")
    assert publisher.publish(event, record=record_for(event))
    crash = CrashInfo(reason="heartbeat_lost", detected_by="worker:w1")
    assert claim_and_publish(redis_client, KEYS, "r-spooled", crash)
    spool = SpoolFile(tmp_path, "r-spooled")
    late = running_event("r-spooled", seq=2)
    spool.append(KEYS.stream_for_run("r-spooled"), encode_event(late), fsync=False)
    spool.close()

    assert flush_spool(redis_client, tmp_path, keys=KEYS) == 0
    assert list(tmp_path.iterdir()) == []
    assert [e.to_state for e in run_events(redis_client, "r-spooled")] == ["running", "crashed"]
    assert "spool of run_id=r-spooled dropped" in caplog.text
