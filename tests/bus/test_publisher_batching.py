"""Publishing with a linger: batched events share round trips, failures never wait."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bus import Keys, OpEvent, OpInfo, OpState, Publisher, RunEvent, RunInfo, RunState
from bus.keys import HOOKS_GROUP
from bus.publisher import RETRY_FIRST_DELAY_S
from bus.redis_server import RedisServer
from bus.runs import RunningOp, RunRecord
from bus.spool import SpoolFile
from bus.urgency import can_wait
from engine import EngineSettings, OpExecutionContext, Run, job, op
from engine import run as run_module
from tests.conftest import TEST_PREFIX
from tests.processes import wait_until
from tests.streams import read_events

KEYS = Keys(prefix=TEST_PREFIX)
RUN = RunInfo(run_id="r" * 32, run_name="batch-rrrrrrrr", job_name="batch")


def op_event(seq: int, to_state: OpState, step_key: str = "step") -> OpEvent:
    op_info = OpInfo(name="step", step_key=step_key)
    return OpEvent(seq=seq, run=RUN, op=op_info, from_state=None, to_state=to_state)


def published(client: redis.Redis) -> list[int]:
    return [event.seq for event in read_events(client, KEYS.stream_for_run(RUN.run_id))]


@pytest.fixture
def lingering(redis_client: redis.Redis) -> Iterator[Publisher]:
    publisher = Publisher(redis_client, keys=KEYS, linger_s=0.2)
    yield publisher
    publisher.close()


def test_only_events_that_alert_nobody_urgently_may_wait() -> None:
    assert can_wait(op_event(1, OpState.RUNNING)) and can_wait(op_event(1, OpState.COMPLETED))
    assert not can_wait(op_event(1, OpState.FAILED))
    assert not can_wait(op_event(1, OpState.RETRYING))
    running = RunEvent(seq=1, run=RUN, from_state=None, to_state=RunState.RUNNING)
    completed = RunEvent(seq=2, run=RUN, from_state=RunState.RUNNING, to_state=RunState.COMPLETED)
    assert can_wait(running) and not can_wait(completed)


def test_batched_events_go_out_within_the_linger_in_order(
    lingering: Publisher, redis_client: redis.Redis
) -> None:
    for seq in range(1, 6):
        assert lingering.publish(op_event(seq, OpState.RUNNING, f"step_{seq}"))
    assert published(redis_client) == []  # still gathering

    wait_until(lambda: published(redis_client) == [1, 2, 3, 4, 5], timeout_s=5, what="a batch")
    # Redis holds the batch a moment before the flusher has read the reply and counted it.
    wait_until(lambda: lingering.backlog == 0, timeout_s=5, what="the backlog to empty")


def test_a_failure_goes_out_at_once_after_everything_before_it(
    lingering: Publisher, redis_client: redis.Redis
) -> None:
    lingering.publish(op_event(1, OpState.RUNNING))
    lingering.publish(op_event(2, OpState.COMPLETED))
    lingering.publish(op_event(3, OpState.RUNNING, "load"))

    assert lingering.publish(op_event(4, OpState.FAILED, "load")) is True
    assert published(redis_client) == [1, 2, 3, 4]


def test_an_urgent_event_does_not_wait_out_the_linger_of_the_batch_before_it(
    redis_client: redis.Redis,
) -> None:
    publisher = Publisher(redis_client, keys=KEYS, linger_s=60)  # longer than the test timeout
    try:
        publisher.publish(op_event(1, OpState.RUNNING))
        publisher.publish(op_event(2, OpState.COMPLETED))

        assert publisher.publish(op_event(3, OpState.FAILED)) is True

        assert published(redis_client) == [1, 2, 3]
    finally:
        publisher.close()


def test_the_first_batched_event_connects_and_creates_its_group_before_the_linger_ends(
    redis_client: redis.Redis,
) -> None:
    # A run's first urgent event must not pay for the connection and the XGROUP CREATE.
    publisher = Publisher(redis_client, keys=KEYS, linger_s=60)
    stream = KEYS.stream_for_run(RUN.run_id)
    try:
        assert publisher.wait_connected(timeout_s=0) is True  # no flusher, nothing to wait for
        publisher.publish(op_event(1, OpState.RUNNING))  # waits for the linger

        assert publisher.wait_connected(timeout_s=5) is True
        assert hooks_groups(redis_client, stream) == [HOOKS_GROUP]
        assert published(redis_client) == []
        assert publisher.publish(op_event(2, OpState.FAILED)) is True
        assert published(redis_client) == [1, 2]
    finally:
        publisher.close()


def test_connecting_ahead_without_redis_backs_off_like_a_failed_delivery(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with RedisServer() as server:  # stopped at once: nothing listens on its port
        client = redis.Redis.from_url(server.url, socket_timeout=0.5)
    spool = SpoolFile(tmp_path, RUN.run_id)
    publisher = Publisher(client, keys=KEYS, linger_s=60, spool=spool)
    try:
        publisher.publish(op_event(1, OpState.RUNNING))
        assert publisher.wait_connected(timeout_s=5) is True  # over, though it failed
        assert "publish deferred" in caplog.text

        # Within the backoff a failure is spooled at once, without another attempt.
        assert publisher.publish(op_event(2, OpState.FAILED)) is False
        assert spool.lines == 2 and publisher.backlog == 2
    finally:
        publisher.close()
        client.close()


def hooks_groups(client: redis.Redis, stream: str) -> list[str]:
    if not client.exists(stream):
        return []
    return [group["name"].decode() for group in client.xinfo_groups(stream)]


def test_close_sends_what_is_waiting_without_waiting_for_the_linger(
    redis_client: redis.Redis,
) -> None:
    publisher = Publisher(redis_client, keys=KEYS, linger_s=30)
    publisher.publish(op_event(1, OpState.RUNNING))
    publisher.publish(op_event(2, OpState.COMPLETED))
    started = time.monotonic()

    publisher.close()

    assert time.monotonic() - started < 5
    assert published(redis_client) == [1, 2]


def test_the_run_record_matches_the_last_event_sent(
    lingering: Publisher, redis_client: redis.Redis
) -> None:
    built: list[int] = []

    def record(seq: int, running: dict[str, RunningOp]) -> RunRecord:
        built.append(seq)
        return RunRecord(run=RUN, seq=seq, state=RunState.RUNNING, running=running)

    step = RunningOp(op=OpInfo(name="step", step_key="step"))
    for seq in range(1, 4):
        lingering.publish(
            op_event(seq, OpState.RUNNING), record=lambda seq=seq: record(seq, {"step": step})
        )
    lingering.publish(op_event(4, OpState.COMPLETED), record=lambda: record(4, {}))
    lingering.flush(force=True)

    assert built == [4]  # only the record of the last event of the round trip is built
    stored = RunRecord.from_hash(redis_client.hgetall(KEYS.run_record(RUN.run_id)))  # type: ignore[arg-type]
    assert stored is not None and (stored.seq, stored.running) == (4, {})


@op
def first() -> int:
    return 1


@op
def second(value: int) -> int:
    return value + 1


@job
def two_ops() -> int:
    return second(first())  # type: ignore[no-any-return]


def test_a_run_with_a_long_linger_still_publishes_everything_by_its_end(
    engine_settings: EngineSettings, redis_client: redis.Redis
) -> None:
    settings = engine_settings.model_copy(update={"publish_linger_ms": 1000})
    started = time.monotonic()

    result = two_ops.execute_in_process(settings=settings)

    assert time.monotonic() - started < 1.0  # nothing waited for the linger
    events = read_events(redis_client, KEYS.stream_for_run(result.run_id))
    assert [event.seq for event in events] == list(range(1, 8))
    assert str(events[-1].to_state) == "completed"
    assert redis_client.exists(KEYS.run_record(result.run_id)) == 0


@op(required_resource_keys={"redis"})
def sees_its_group(context: OpExecutionContext) -> bool:
    """Whether the run's hooks group exists while its stream is still empty."""
    client = context.resources.redis
    stream = KEYS.stream_for_run(context.run_id)
    return hooks_groups(client, stream) == [HOOKS_GROUP] and client.xlen(stream) == 0


def test_a_run_connects_and_creates_its_group_before_its_first_op(
    engine_settings: EngineSettings,
    redis_client: redis.Redis,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(run_module, "CONNECT_WAIT_S", 10.0)  # no timing in the test

    @job(resource_defs={"redis": redis_client})
    def warm() -> bool:
        return sees_its_group()  # type: ignore[no-any-return]

    client = redis.Redis.from_url(redis_url)
    publisher = Publisher(client, keys=KEYS, linger_s=60)  # no batch is due during the run
    try:
        result = Run(warm, publisher=publisher, settings=engine_settings).execute()
    finally:
        client.close()

    assert result.output is True
    assert [event.seq for event in published_run(redis_client, result.run_id)] == [1, 2, 3, 4, 5]


def published_run(client: redis.Redis, run_id: str) -> list[RunEvent | OpEvent]:
    return read_events(client, KEYS.stream_for_run(run_id))


def test_batched_events_flow_again_within_the_linger_once_redis_is_back(
    tmp_path: Path,
) -> None:
    # The flusher sleeps while nothing waits; a failure that Redis did not take stays in
    # the backlog without waking it, so the next batched event must wake it.
    with RedisServer(appendonly=True, directory=tmp_path / "redis") as server:
        client = redis.Redis.from_url(server.url, socket_timeout=0.5)
        publisher = Publisher(client, keys=KEYS, linger_s=0.01)
        try:
            publisher.publish(op_event(1, OpState.RUNNING))
            wait_until(lambda: published(client) == [1], timeout_s=5, what="the first batch")
            server.stop()
            assert publisher.publish(op_event(2, OpState.FAILED)) is False
            server.start()
            time.sleep(RETRY_FIRST_DELAY_S)  # the publisher's backoff after the failure

            publisher.publish(op_event(3, OpState.RUNNING))

            wait_until(lambda: published(client) == [1, 2, 3], timeout_s=5, what="the rest")
        finally:
            publisher.close()
            client.close()
