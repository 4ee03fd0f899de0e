"""Time-based checks: their context's repr and fields, the errors of a bad ``job=``, and
what the log and the message say."""

from __future__ import annotations

import asyncio
import logging
import types
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import redis
import redis.asyncio as aioredis

from bus import CheckEvent, CheckKind, Keys, RunInfo, RunState
from bus.errors import ConfigError
from bus.runs import RunRecord
from notifiers import NotificationRule, NotifierConfigError, SlackChannel
from sensors import failure_count_check, job_freshness_check, run_stuck_check
from sensors.check_runner import CheckRunner
from sensors.checks import check_context_from_event
from tests.conftest import TEST_PREFIX

KEYS = Keys(prefix=TEST_PREFIX)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def noop(context: object) -> None:
    pass


def test_a_check_context_has_a_useful_repr_and_the_threshold() -> None:
    event = CheckEvent(
        event_id="e1",
        check_name="keeps_failing",
        kind=CheckKind.FAILURE_COUNT,
        job_name="etl",
        message="m",
        within_s=3600,
        count=4,
        failures=3,
        failed_run_ids=("r-2", "r-1"),
        last_error="boom",
    )
    context = check_context_from_event(event)

    assert repr(context) == (
        "<CheckContext check='keeps_failing' kind=failure_count job='etl' event_id='e1'>"
    )
    assert (context.failures, context.failed_run_ids, context.last_error) == (
        3,
        ("r-2", "r-1"),
        "boom",
    )


@pytest.mark.parametrize(
    "decorator",
    [
        lambda job: run_stuck_check(job=job, longer_than=timedelta(1), name="c"),
        lambda job: job_freshness_check(job=job, within=timedelta(1), name="c"),
        lambda job: failure_count_check(job=job, failures=1, within=timedelta(1), name="c"),
    ],
)
def test_a_check_on_something_that_is_not_a_job_says_so(decorator: Any) -> None:
    with pytest.raises(ConfigError, match=r"_check 'c' names a job it cannot read: got 42\. "):
        decorator(42)(noop)
    assert decorator(types.SimpleNamespace(name="etl"))(noop).job_name == "etl"


def test_a_rule_on_something_that_is_not_a_job_says_so() -> None:
    with pytest.raises(NotifierConfigError, match=r"rule jobs= names a job it cannot read: got 42"):
        NotificationRule(name="r", jobs=[42], destinations=[SlackChannel("#a")])


def test_a_sub_minute_limit_reads_in_seconds_and_the_log_names_job_and_run(
    redis_client: redis.Redis, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    check = run_stuck_check(job="etl", longer_than=timedelta(seconds=30), name="quick")(noop)
    run = RunInfo(run_id="r-1", run_name="etl-1", job_name="etl", started_at=T0)
    record = RunRecord(run=run, seq=2, state=RunState.RUNNING, state_since=T0)
    redis_client.hset(KEYS.run_record("r-1"), mapping=cast(Any, record.to_hash()))
    redis_client.zadd(KEYS.runs_alive_for_run("r-1"), {"r-1": 9_999_999_999})

    async def run_checks() -> list[CheckEvent]:
        client = aioredis.Redis.from_url(redis_url)
        try:
            runner = CheckRunner(client, keys=KEYS, checks=[check])
            return await runner.run_once(now=T0 + timedelta(seconds=45))
        finally:
            await client.aclose()

    with caplog.at_level(logging.WARNING, logger="sensors.check_runner"):
        [fired] = asyncio.run(run_checks())

    assert fired.message == "run r-1 (etl-1) of job etl has been running for 45 s (limit 30 s)"
    [line] = [r.getMessage() for r in caplog.records if r.name == "sensors.check_runner"]
    assert line.startswith(
        f"check fired check=quick job=etl run_id=r-1 event_id={fired.event_id} run r-1"
    )
