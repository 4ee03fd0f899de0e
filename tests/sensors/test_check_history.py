"""The check history: freshness and failure counts read what the runner recorded from the
streams incrementally (each entry once), not a window of the (trimmed) streams; times are
the events' ``occurred_at`` on the Redis clock's "now"; failures count distinct runs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import redis
import redis.asyncio as aioredis

from bus import CheckEvent, ErrorInfo, Keys, RunEvent, RunInfo, RunState, encode_event
from bus.runs import EVENT_FIELD, server_time
from sensors import CheckDefinition, failure_count_check, job_freshness_check
from sensors.check_index import HistoryIndex
from sensors.check_runner import CheckRunner
from tests.conftest import TEST_PREFIX

KEYS = Keys(prefix=TEST_PREFIX, shards=2)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@job_freshness_check(job="etl", within=timedelta(hours=1))
def etl_fresh(context: object) -> None:
    pass


@failure_count_check(job="etl", failures=2, within=timedelta(hours=1))
def etl_failing(context: object) -> None:
    pass


def ended(run_id: str, state: RunState, at: datetime, *, message: str = "disk full") -> RunEvent:
    failed = state is not RunState.COMPLETED
    return RunEvent(
        seq=3,
        occurred_at=at,
        run=RunInfo(run_id=run_id, run_name=f"etl-{run_id}", job_name="etl"),
        error=ErrorInfo(type="OSError", message=message) if failed else None,
        from_state=RunState.RUNNING,
        to_state=state,
    )


def add(client: redis.Redis, event: RunEvent) -> None:
    client.xadd(KEYS.stream_for_run(event.run_id), {EVENT_FIELD: encode_event(event)})


def trim_everything(client: redis.Redis) -> None:
    """What retention does to old entries (here: all of them)."""
    for stream in KEYS.all_event_streams():
        client.xtrim(stream, maxlen=0)


class Runner:
    """A fresh ``CheckRunner`` per evaluation: nothing may be remembered in memory."""

    def __init__(self, redis_url: str, *checks: CheckDefinition) -> None:
        self.redis_url = redis_url
        self.checks = list(checks)
        self.scanned: list[int] = []

    def __call__(self, now: datetime) -> list[CheckEvent]:
        async def run() -> list[CheckEvent]:
            client = aioredis.Redis.from_url(self.redis_url)
            try:
                runner = CheckRunner(client, keys=KEYS, checks=self.checks)
                fired = await runner.run_once(now=now)
                self.scanned.append(runner.index.scanned)
                return fired
            finally:
                await client.aclose()

        return asyncio.run(run())


def test_a_job_that_never_ran_is_stale_only_a_full_window_after_watching_began(
    redis_url: str,
) -> None:
    evaluate = Runner(redis_url, etl_fresh)
    assert evaluate(T0) == []  # the first evaluation after deploy begins watching
    assert evaluate(T0 + timedelta(minutes=59)) == []

    [stale] = evaluate(T0 + timedelta(hours=1))

    assert stale.watching_since == T0 and stale.last_success_at is None
    assert "no success seen since the check began watching" in stale.message
    assert evaluate(T0 + timedelta(hours=1, minutes=30)) == []  # once per window
    [again] = evaluate(T0 + timedelta(hours=2))
    assert again.event_id != stale.event_id


def test_a_success_trimmed_from_the_streams_still_counts(
    redis_client: redis.Redis, redis_url: str
) -> None:
    evaluate = Runner(redis_url, etl_fresh)
    evaluate(T0 - timedelta(hours=3))  # watching for a while
    add(redis_client, ended("ok-1", RunState.COMPLETED, T0))
    assert evaluate(T0 + timedelta(minutes=1)) == []
    trim_everything(redis_client)

    assert evaluate(T0 + timedelta(minutes=50)) == []  # the old code saw no success: stale
    [stale] = evaluate(T0 + timedelta(hours=1, minutes=1))
    assert (stale.last_success_at, stale.last_success_run_name) == (T0, "etl-ok-1")
    assert "since 2026-03-01 12:00:00 UTC (run etl-ok-1)" in stale.message


def test_failures_trimmed_from_the_streams_still_count_and_each_entry_is_read_once(
    redis_client: redis.Redis, redis_url: str
) -> None:
    evaluate = Runner(redis_url, etl_failing, etl_fresh)
    add(redis_client, ended("f-1", RunState.FAILED, T0, message="disk full"))
    assert evaluate(T0 + timedelta(minutes=1)) == []
    trim_everything(redis_client)
    add(redis_client, ended("f-2", RunState.CRASHED, T0 + timedelta(minutes=5), message="OOM"))

    [fired] = evaluate(T0 + timedelta(minutes=6))

    assert (fired.count, fired.failed_run_ids, fired.last_error) == (2, ("f-2", "f-1"), "OOM")
    assert fired.failed_run_names == ("etl-f-2", "etl-f-1")  # the names survive the trim too
    assert evaluate(T0 + timedelta(minutes=7)) == []
    assert evaluate(T0 + timedelta(minutes=8)) == []
    # One entry, one more, the check event just published, then nothing new: each entry
    # is read once, for both checks.
    assert evaluate.scanned == [1, 1, 1, 0]


def test_a_failure_count_fires_again_only_for_new_failures(
    redis_client: redis.Redis, redis_url: str
) -> None:
    evaluate = Runner(redis_url, etl_failing)
    for minute, run_id in enumerate(["f-1", "f-2"]):
        add(redis_client, ended(run_id, RunState.FAILED, T0 + timedelta(minutes=minute)))
    [first] = evaluate(T0 + timedelta(minutes=5))
    add(redis_client, ended("f-3", RunState.FAILED, T0 + timedelta(minutes=6)))
    assert evaluate(T0 + timedelta(minutes=7)) == []  # one new failure: below the threshold
    add(redis_client, ended("f-4", RunState.FAILED, T0 + timedelta(minutes=8)))

    [second] = evaluate(T0 + timedelta(minutes=9))

    assert (first.count, second.count) == (2, 2)
    assert second.failed_run_ids == ("f-4", "f-3")


def test_failures_count_distinct_runs_by_when_they_happened(
    redis_client: redis.Redis, redis_url: str
) -> None:
    evaluate = Runner(redis_url, etl_failing)
    # The same run's failure twice (re-published), and one that happened long before the
    # window but reached the stream just now (an engine's spool flushed late).
    add(redis_client, ended("f-1", RunState.FAILED, T0))
    add(redis_client, ended("f-1", RunState.FAILED, T0))
    add(redis_client, ended("f-old", RunState.FAILED, T0 - timedelta(hours=3)))

    assert evaluate(T0 + timedelta(minutes=1)) == []

    add(redis_client, ended("f-2", RunState.FAILED, T0 + timedelta(minutes=2)))
    [fired] = evaluate(T0 + timedelta(minutes=3))
    assert fired.failed_run_ids == ("f-2", "f-1")


def test_history_keys_of_a_job_share_one_slot(redis_url: str) -> None:
    tags = {
        key[key.index("{") : key.index("}") + 1]
        for key in (KEYS.job_successes("etl"), KEYS.job_failures("etl"), KEYS.job_runs("etl"))
    }
    assert len(tags) == 1
    assert KEYS.check_state("c", "etl").startswith(
        KEYS.stream_for_check("etl").removesuffix(":events")
    )


def test_now_is_the_redis_servers_clock(redis_client: redis.Redis, redis_url: str) -> None:
    async def now() -> datetime:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await server_time(client)
        finally:
            await client.aclose()

    before_s, before_us = redis_client.time()
    moment = asyncio.run(now())
    after_s, after_us = redis_client.time()
    assert before_s + before_us / 1e6 <= moment.timestamp() <= after_s + after_us / 1e6 + 1e-6


def test_a_first_evaluation_over_a_long_stream_catches_up_over_several(
    redis_url: str, redis_client: redis.Redis
) -> None:
    now = datetime.now(UTC)
    keys = Keys(prefix=TEST_PREFIX, shards=1)
    for n in range(5):
        redis_client.xadd(
            keys.events_stream(0),
            {EVENT_FIELD: encode_event(ended(f"one-{n}", RunState.FAILED, now))},
        )

    async def main() -> list[int]:
        client = aioredis.Redis.from_url(redis_url)
        try:
            index = HistoryIndex(client, keys=keys, keep_s={}, max_read=2)
            return [await index.catch_up(now.timestamp()) for _ in range(4)]
        finally:
            await client.aclose()

    assert asyncio.run(main()) == [2, 2, 1, 0]  # at most 2 a time; none read twice
