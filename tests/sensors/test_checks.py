"""Time-based checks: failure counts, freshness, stuck runs; once per occurrence; retries
and dead letters for a failing check function."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import redis
import redis.asyncio as aioredis

from bus import Keys, RunInfo, RunState
from bus.backoff import Backoff
from bus.errors import ConfigError
from bus.runs import RunRecord
from engine import EngineSettings
from sensors import CheckContext, CheckDefinition, CheckKind, CodeLocation, failure_count_check
from sensors.check_runner import CheckRunner
from sensors.hook_threads import HookThreads
from sensors.maintenance import maintenance_jobs
from sensors.settings import WorkerSettings
from tests.code_locations import basic, checked
from tests.conftest import TEST_PREFIX
from tests.streams import read_stream

KEYS = Keys(prefix=TEST_PREFIX)


@pytest.fixture(autouse=True)
def clear() -> Iterator[None]:
    checked.FIRED.clear()
    checked.ATTEMPTS.clear()
    yield
    checked.FIRED.clear()
    checked.ATTEMPTS.clear()


def run_checks(
    redis_url: str, *checks: CheckDefinition, now: datetime | None = None
) -> list[CheckContext]:
    async def run() -> list[CheckContext]:
        client = aioredis.Redis.from_url(redis_url)
        threads = HookThreads(2, spare=0)
        runner = CheckRunner(
            client,
            keys=KEYS,
            checks=list(checks),
            retry=Backoff(base_s=0.01, max_attempts=3),
            timeout_s=5,
            threads=threads,
        )
        try:
            return await runner.run_once(now=now)
        finally:
            threads.close()
            await client.aclose()

    return asyncio.run(run())


def test_n_failures_within_the_window_fire_once(
    redis_url: str, redis_client: redis.Redis, engine_settings: EngineSettings
) -> None:
    basic.etl.execute_in_process(raise_on_error=False, settings=engine_settings)
    assert run_checks(redis_url, checked.etl_keeps_failing) == []

    basic.etl.execute_in_process(raise_on_error=False, settings=engine_settings)
    [fired] = run_checks(redis_url, checked.etl_keeps_failing)
    assert run_checks(redis_url, checked.etl_keeps_failing) == []  # once per occurrence

    assert [name for name, _ in checked.FIRED] == ["etl_keeps_failing"]
    assert (fired.kind, fired.job_name, fired.count) == (CheckKind.FAILURE_COUNT, "etl", 2)
    assert fired.message.startswith("job etl failed 2 times since ")


def test_failures_older_than_the_window_do_not_count(
    redis_url: str, redis_client: redis.Redis, engine_settings: EngineSettings
) -> None:
    for _ in range(2):
        basic.etl.execute_in_process(raise_on_error=False, settings=engine_settings)
    later = datetime.now(UTC) + timedelta(hours=2)
    assert run_checks(redis_url, checked.etl_keeps_failing, now=later) == []


def test_a_job_without_a_recent_success_is_reported_stale(
    redis_url: str, redis_client: redis.Redis, engine_settings: EngineSettings
) -> None:
    [stale] = run_checks(redis_url, checked.quiet_is_stale)
    assert stale.kind is CheckKind.NOT_FRESH
    assert stale.message.startswith("job quiet has not completed successfully since ")

    redis_client.flushdb()
    basic.quiet.execute_in_process(settings=engine_settings)
    assert run_checks(redis_url, checked.quiet_is_stale) == []


def test_a_run_running_longer_than_the_limit_is_reported(
    redis_url: str, redis_client: redis.Redis
) -> None:
    started = datetime.now(UTC) - timedelta(hours=2)
    for run_id, state in (("r-stuck", RunState.RUNNING), ("r-pending", RunState.PENDING)):
        run = RunInfo(run_id=run_id, run_name=run_id, job_name="hanging", started_at=started)
        record = RunRecord(run=run, seq=2, state=state, pid=1, host="h")
        redis_client.hset(KEYS.run_record(run_id), mapping=cast(Any, record.to_hash()))
        redis_client.zadd(KEYS.runs_alive(0), {run_id: 9_999_999_999})

    [stuck] = run_checks(redis_url, checked.hanging_too_long)

    assert (stuck.kind, stuck.run_id) == (CheckKind.RUN_STUCK, "r-stuck")
    assert "has been running for 120 min (limit 30 min)" in stuck.message


def test_a_failing_check_is_retried_then_dead_lettered(
    redis_url: str, redis_client: redis.Redis
) -> None:
    fired = run_checks(redis_url, checked.flaky_check, checked.broken_check)

    assert [context.check_name for context in fired] == ["flaky_check", "broken"]
    assert [name for name, _ in checked.FIRED] == ["flaky_check"]
    [letter] = [fields for _, fields in read_stream(redis_client, KEYS.dead_letter_stream(0))]
    assert (letter[b"reason"], letter[b"handler"], letter[b"attempts"]) == (
        b"check_failed",
        b"check:broken",
        b"3",
    )
    assert b"RuntimeError: pager is down" in letter[b"error"]


def test_workers_schedule_the_checks_of_their_code_location(
    worker_settings: WorkerSettings, redis_url: str
) -> None:
    location = CodeLocation.load("tests.code_locations.checked")
    client = aioredis.Redis.from_url(redis_url)
    runner = CheckRunner(
        client,
        keys=KEYS,
        checks=list(location.checks.values()),
        retry=Backoff(),
        timeout_s=1,
        threads=HookThreads(1, spare=0),
    )
    jobs = maintenance_jobs(client, worker_settings, checks=runner)

    assert [job.name for job in jobs] == ["crash-detection", "retention", "time-checks"]
    assert sorted(location.checks) == [
        "broken",
        "etl_keeps_failing",
        "flaky_check",
        "hanging_too_long",
        "quiet_is_stale",
    ]


def test_a_failure_count_check_needs_at_least_one_failure() -> None:
    with pytest.raises(ConfigError, match=r"failure_count_check 'x' needs failures >= 1: got 0"):
        failure_count_check(job="etl", failures=0, within=timedelta(hours=1), name="x")


def test_repr() -> None:
    assert repr(checked.etl_keeps_failing) == (
        "<CheckDefinition name='etl_keeps_failing' kind=failure_count job='etl' within=1:00:00>"
    )
