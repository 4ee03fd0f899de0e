"""Stuck runs: one occurrence per (run, state, since), kept while the run stays stuck,
``repeat_every`` to be reminded; and nothing is published for a run that changed or ended
between the evaluation and the publishing script."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import redis
import redis.asyncio as aioredis

from bus import CheckEvent, CheckKind, Keys, RunInfo, RunState
from bus.checks import FIRE_SCRIPT, RunGuard, fire_args
from bus.errors import ConfigError
from bus.runs import RunRecord
from sensors import CheckDefinition, run_stuck_check
from sensors.check_runner import CheckRunner
from tests.conftest import TEST_PREFIX
from tests.streams import read_check_events

KEYS = Keys(prefix=TEST_PREFIX)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def noop(context: object) -> None:
    pass


ONCE = run_stuck_check(
    job="etl", longer_than=timedelta(minutes=30), state=[RunState.PENDING, RunState.RUNNING]
)(noop)
HOURLY = run_stuck_check(
    job="etl", longer_than=timedelta(minutes=30), repeat_every=timedelta(hours=1), name="hourly"
)(noop)


def put_run(client: redis.Redis, run_id: str, state: RunState, since: datetime) -> RunRecord:
    run = RunInfo(run_id=run_id, run_name=f"etl-{run_id}", job_name="etl", started_at=T0)
    record = RunRecord(run=run, seq=2, state=state, state_since=since)
    client.hset(KEYS.run_record(run_id), mapping=cast(Any, record.to_hash()))
    client.zadd(KEYS.runs_alive_for_run(run_id), {run_id: 9_999_999_999})
    return record


def evaluate(redis_url: str, check: CheckDefinition, now: datetime) -> list[CheckEvent]:
    async def run() -> list[CheckEvent]:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await CheckRunner(client, keys=KEYS, checks=[check]).run_once(now=now)
        finally:
            await client.aclose()

    return asyncio.run(run())


def test_a_stuck_run_fires_once_not_every_limit(redis_client: redis.Redis, redis_url: str) -> None:
    put_run(redis_client, "r-1", RunState.RUNNING, T0)

    [fired] = evaluate(redis_url, ONCE, T0 + timedelta(minutes=31))

    for later in (timedelta(hours=1, minutes=5), timedelta(hours=7), timedelta(days=3)):
        assert evaluate(redis_url, ONCE, T0 + later) == []
    assert fired.message == (
        "run r-1 (etl-r-1) of job etl has been running for 31 min (limit 30 min)"
    )
    marker = KEYS.check_fired(ONCE.name, "r-1", fired.event_id)
    assert redis_client.ttl(marker) > 24 * 3600 - 60  # renewed while the run stays stuck


def test_a_pending_alert_does_not_hide_a_later_running_stall(
    redis_client: redis.Redis, redis_url: str
) -> None:
    put_run(redis_client, "r-1", RunState.PENDING, T0)
    [pending] = evaluate(redis_url, ONCE, T0 + timedelta(minutes=40))
    put_run(redis_client, "r-1", RunState.RUNNING, T0 + timedelta(minutes=45))

    assert evaluate(redis_url, ONCE, T0 + timedelta(minutes=50)) == []
    [running] = evaluate(redis_url, ONCE, T0 + timedelta(minutes=80))

    assert (pending.run_state, running.run_state) == (RunState.PENDING, RunState.RUNNING)
    assert running.event_id != pending.event_id
    assert running.state_since == T0 + timedelta(minutes=45)


def test_repeat_every_reminds_while_the_run_stays_stuck(
    redis_client: redis.Redis, redis_url: str
) -> None:
    put_run(redis_client, "r-1", RunState.RUNNING, T0)
    times = [timedelta(minutes=m) for m in (31, 60, 89, 91, 120, 151)]

    fired = [len(evaluate(redis_url, HOURLY, T0 + moment)) for moment in times]

    assert fired == [1, 0, 0, 1, 0, 1]  # at 30 min past the state, then every hour


def test_repeat_every_must_be_positive() -> None:
    with pytest.raises(ConfigError, match=r"run_stuck_check 'x' repeats every non-positive"):
        run_stuck_check(job="etl", longer_than=timedelta(1), repeat_every=timedelta(0), name="x")


def stuck_event(record: RunRecord) -> tuple[CheckEvent, RunGuard]:
    event = CheckEvent(
        event_id="e" * 32,
        check_name="c",
        kind=CheckKind.RUN_STUCK,
        job_name="etl",
        message="stuck",
        within_s=60,
        run=record.run,
        run_state=record.state,
        state_since=record.state_since,
    )
    since = record.model_dump(mode="json")["state_since"]
    return event, RunGuard(state=str(record.state), state_since=since)


def fire(client: redis.Redis, event: CheckEvent, guard: RunGuard) -> Any:
    keys, args = fire_args(KEYS, event, ttl_s=60, run_guard=guard)
    return client.eval(FIRE_SCRIPT, len(keys), *keys, *args)


@pytest.mark.parametrize("change", ["completed", "other_state", "new_since", "crash_claimed"])
def test_nothing_is_published_for_a_run_that_changed_after_it_was_read(
    redis_client: redis.Redis, change: str
) -> None:
    record = put_run(redis_client, "r-1", RunState.RUNNING, T0)
    event, guard = stuck_event(record)
    if change == "completed":  # the engine's terminal script deletes both
        redis_client.delete(KEYS.run_record("r-1"))
        redis_client.zrem(KEYS.runs_alive_for_run("r-1"), "r-1")
    elif change == "other_state":
        put_run(redis_client, "r-1", RunState.CANCELLING, T0)
    elif change == "new_since":
        put_run(redis_client, "r-1", RunState.RUNNING, T0 + timedelta(minutes=1))
    else:  # a crash claim removes the run from the liveness ZSET, keeps the record a while
        redis_client.zrem(KEYS.runs_alive_for_run("r-1"), "r-1")

    assert fire(redis_client, event, guard) == -1
    assert read_check_events(redis_client, KEYS.stream_for_run("r-1")) == []
    assert not redis_client.exists(KEYS.check_fired("c", "r-1", event.event_id))


def test_a_run_still_as_read_is_published(redis_client: redis.Redis) -> None:
    record = put_run(redis_client, "r-1", RunState.RUNNING, T0)
    event, guard = stuck_event(record)
    assert fire(redis_client, event, guard) == 1
    assert fire(redis_client, event, guard) == 0
    assert read_check_events(redis_client, KEYS.stream_for_run("r-1")) == [event]
