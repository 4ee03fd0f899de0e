"""Time-based checks: what fires (failure counts, freshness, stuck runs, pending runs), once
per occurrence, as one ``CheckEvent`` on the stream; workers run the check's function for
it like a hook (once, retried, dead-lettered, with resources)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import redis
import redis.asyncio as aioredis

from bus import CheckEvent, CheckKind, Keys, RunInfo, RunState
from bus.checks import check_event_id
from bus.errors import ConfigError
from bus.runs import RunRecord
from engine import EngineSettings, job, op
from sensors import (
    CheckDefinition,
    CodeLocation,
    failure_count_check,
    run_status_sensor,
    run_stuck_check,
)
from sensors.check_runner import CheckRunner
from sensors.maintenance import maintenance_jobs
from sensors.settings import WorkerSettings
from tests.code_locations import basic, checked
from tests.conftest import TEST_PREFIX
from tests.ledger_records import is_recorded
from tests.processes import wait_until
from tests.streams import read_check_events, read_stream
from tests.workers import burst

KEYS = Keys(prefix=TEST_PREFIX)


@pytest.fixture(autouse=True)
def clear() -> Iterator[None]:
    checked.FIRED.clear()
    checked.ATTEMPTS.clear()
    checked.PAGER.pages.clear()
    yield
    checked.FIRED.clear()
    checked.ATTEMPTS.clear()
    checked.PAGER.pages.clear()


def run_checks(
    redis_url: str, *checks: CheckDefinition, now: datetime | None = None
) -> list[CheckEvent]:
    async def run() -> list[CheckEvent]:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await CheckRunner(client, keys=KEYS, checks=list(checks)).run_once(now=now)
        finally:
            await client.aclose()

    return asyncio.run(run())


def fire_stale(redis_url: str) -> list[CheckEvent]:
    """Watch ``quiet`` (which has not run), then evaluate a window later: it fires."""
    start = datetime.now(UTC)
    assert run_checks(redis_url, checked.quiet_is_stale, now=start) == []
    return run_checks(redis_url, checked.quiet_is_stale, now=start + timedelta(hours=1))


def all_check_events(client: redis.Redis) -> list[CheckEvent]:
    return [
        event for stream in KEYS.all_event_streams() for event in read_check_events(client, stream)
    ]


def stuck_run(
    client: redis.Redis, run_id: str, state: RunState, *, since: datetime, job: str
) -> None:
    """A run record as the engine keeps it, in ``state`` since ``since``."""
    run = RunInfo(run_id=run_id, run_name=run_id, job_name=job, started_at=since)
    record = RunRecord(run=run, seq=2, state=state, state_since=since, pid=1, host="h")
    client.hset(KEYS.run_record(run_id), mapping=cast(Any, record.to_hash()))
    client.zadd(KEYS.runs_alive_for_run(run_id), {run_id: 9_999_999_999})


def test_n_failures_within_the_window_fire_once(
    redis_url: str, redis_client: redis.Redis, engine_settings: EngineSettings
) -> None:
    basic.etl.execute_in_process(raise_on_error=False, settings=engine_settings)
    assert run_checks(redis_url, checked.etl_keeps_failing) == []

    basic.etl.execute_in_process(raise_on_error=False, settings=engine_settings)
    [fired] = run_checks(redis_url, checked.etl_keeps_failing)
    assert run_checks(redis_url, checked.etl_keeps_failing) == []  # once per occurrence

    assert (fired.kind, fired.job_name, fired.count, fired.failures) == (
        CheckKind.FAILURE_COUNT,
        "etl",
        2,
        2,
    )
    assert fired.message.startswith("job etl failed 2 times in the last 1 h (newest: run ")
    assert fired.within_s == 3600
    assert all_check_events(redis_client) == [fired]
    assert checked.FIRED == []  # the runner publishes; workers call the function


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
    start = datetime.now(UTC)
    assert run_checks(redis_url, checked.quiet_is_stale, now=start) == []  # starts watching
    [stale] = run_checks(redis_url, checked.quiet_is_stale, now=start + timedelta(hours=1))
    assert stale.kind is CheckKind.NOT_FRESH
    assert stale.message == (
        f"job quiet has not completed successfully since {start:%F %T} UTC "
        "(no success seen since the check began watching)"
    )
    assert stale.run is None and stale.watching_since == start

    redis_client.flushdb()
    basic.quiet.execute_in_process(settings=engine_settings)
    assert run_checks(redis_url, checked.quiet_is_stale, now=start) == []
    assert run_checks(redis_url, checked.quiet_is_stale, now=start + timedelta(minutes=59)) == []


def test_a_run_running_longer_than_the_limit_is_reported(
    redis_url: str, redis_client: redis.Redis
) -> None:
    since = datetime.now(UTC) - timedelta(hours=2)
    stuck_run(redis_client, "r-stuck", RunState.RUNNING, since=since, job="hanging")
    stuck_run(redis_client, "r-pending", RunState.PENDING, since=since, job="hanging")

    [stuck] = run_checks(redis_url, checked.hanging_too_long)

    assert (stuck.kind, stuck.run_id, stuck.run_state) == (
        CheckKind.RUN_STUCK,
        "r-stuck",
        RunState.RUNNING,
    )
    assert stuck.state_since == since
    assert stuck.message == (
        "run r-stuck (r-stuck) of job hanging has been running for 2 h (limit 30 min)"
    )
    # On the run's own stream, next to its events.
    assert read_check_events(redis_client, KEYS.stream_for_run("r-stuck")) == [stuck]


def test_a_run_that_never_started_is_caught_by_a_pending_check(
    redis_url: str, redis_client: redis.Redis
) -> None:
    now = datetime.now(UTC)
    stuck_run(
        redis_client, "q-old", RunState.PENDING, since=now - timedelta(minutes=45), job="queued"
    )
    stuck_run(
        redis_client, "q-new", RunState.PENDING, since=now - timedelta(minutes=2), job="queued"
    )
    stuck_run(redis_client, "q-ran", RunState.RUNNING, since=now - timedelta(hours=3), job="queued")

    [pending] = run_checks(redis_url, checked.never_started, now=now)

    assert (pending.run_id, pending.run_state) == ("q-old", RunState.PENDING)
    assert "has been pending for 45 min (limit 10 min)" in pending.message


#: What ``peek`` saw of its own run's record, and the client it reads it with.
RECORDS: list[RunRecord] = []
PEEK_CLIENT: list[redis.Redis] = []


@op
def peek() -> None:
    [client] = PEEK_CLIENT

    def running_record() -> RunRecord | None:
        for raw_id in cast(list[bytes], client.zrange(KEYS.runs_alive(0), 0, -1)):
            fields = cast(dict[bytes, bytes], client.hgetall(KEYS.run_record(raw_id.decode())))
            record = RunRecord.from_hash(fields)
            if record is not None and record.state is RunState.RUNNING:
                return record
        return None

    record = wait_until(running_record, what="the run's record to say running")
    assert record is not None
    RECORDS.append(record)


@job
def peeking() -> None:
    peek()


def test_the_engine_records_when_the_run_entered_its_state(
    redis_client: redis.Redis, engine_settings: EngineSettings
) -> None:
    PEEK_CLIENT[:] = [redis_client]
    RECORDS.clear()
    before = datetime.now(UTC)

    peeking.execute_in_process(settings=engine_settings)

    [record] = RECORDS
    assert record.state_since is not None and before <= record.state_since <= datetime.now(UTC)
    assert record.run.started_at is not None and record.state_since >= record.run.started_at


def test_stuck_states_must_be_ones_a_run_can_be_stuck_in() -> None:
    with pytest.raises(ConfigError, match=r"run_stuck_check 'x' watches states a run cannot"):
        run_stuck_check(job="etl", longer_than=timedelta(hours=1), state=RunState.FAILED, name="x")
    both = run_stuck_check(
        job="etl", longer_than=timedelta(hours=1), state=[RunState.PENDING, RunState.RUNNING]
    )(checked.hanging_too_long.fn)
    assert both.states == {RunState.PENDING, RunState.RUNNING}


def test_the_event_id_is_the_same_for_one_occurrence_and_new_for_the_next() -> None:
    first = check_event_id("c", "etl", "running\x002024-05-01T12:00:00Z\x000")
    assert check_event_id("c", "etl", "running\x002024-05-01T12:00:00Z\x000") == first
    assert check_event_id("c", "etl", "running\x002024-05-01T12:00:00Z\x001") != first
    assert check_event_id("c", "other", "running\x002024-05-01T12:00:00Z\x000") != first
    assert len(first) == 32


def test_a_worker_runs_the_check_function_once_for_the_event(
    redis_url: str, redis_client: redis.Redis, worker_settings: WorkerSettings
) -> None:
    since = datetime.now(UTC) - timedelta(hours=2)
    stuck_run(redis_client, "r-stuck", RunState.RUNNING, since=since, job="hanging")
    [event] = run_checks(redis_url, checked.hanging_too_long)

    burst("tests.code_locations.checked", worker_settings)

    [(name, context)] = checked.FIRED
    assert name == "hanging_too_long"
    assert (context.run_id, context.kind, context.run_state) == (
        "r-stuck",
        CheckKind.RUN_STUCK,
        RunState.RUNNING,
    )
    assert context.run is not None and context.run.job_name == "hanging"
    assert context.within == timedelta(minutes=30)
    assert context.event_id == event.event_id
    assert is_recorded(redis_client, KEYS, event, "check:hanging_too_long")


def test_the_same_occurrence_published_again_does_not_run_the_function_again(
    redis_url: str, redis_client: redis.Redis, worker_settings: WorkerSettings
) -> None:
    since = datetime.now(UTC) - timedelta(hours=2)
    stuck_run(redis_client, "r-stuck", RunState.RUNNING, since=since, job="hanging")
    [event] = run_checks(redis_url, checked.hanging_too_long)
    burst("tests.code_locations.checked", worker_settings)
    # The occurrence's marker is lost (deleted by hand) and the runner publishes it again.
    redis_client.delete(KEYS.check_fired("hanging_too_long", "r-stuck", event.event_id))
    [again] = run_checks(redis_url, checked.hanging_too_long)

    worker = burst("tests.code_locations.checked", worker_settings)

    assert again.event_id == event.event_id
    assert len(all_check_events(redis_client)) == 2
    assert [name for name, _ in checked.FIRED] == ["hanging_too_long"]
    assert (worker.handled, worker.dispatcher.succeeded) == (1, 0)  # skipped by the ledger


def test_a_check_function_gets_its_resources(
    redis_url: str, redis_client: redis.Redis, worker_settings: WorkerSettings
) -> None:
    start = datetime.now(UTC)
    run_checks(redis_url, checked.page_when_stale, now=start)
    run_checks(redis_url, checked.page_when_stale, now=start + timedelta(hours=25))

    burst("tests.code_locations.checked", worker_settings)

    [page] = checked.PAGER.pages
    assert page.startswith("page_when_stale: job nightly has not completed successfully")


def test_a_failing_check_function_is_retried_then_dead_lettered(
    redis_url: str, redis_client: redis.Redis, worker_settings: WorkerSettings
) -> None:
    start = datetime.now(UTC)
    run_checks(redis_url, checked.flaky_check, checked.broken_check, now=start)
    fired = run_checks(
        redis_url, checked.flaky_check, checked.broken_check, now=start + timedelta(hours=1)
    )
    settings = worker_settings.model_copy(update={"retry_base_s": 0.01, "retry_max_s": 0.02})

    burst("tests.code_locations.checked", settings)

    assert [event.check_name for event in fired] == ["flaky_check", "broken"]
    assert [name for name, _ in checked.FIRED] == ["flaky_check"]
    assert len(checked.ATTEMPTS) == 2
    letters = [
        fields
        for stream in KEYS.all_event_streams()
        for _, fields in read_stream(redis_client, KEYS.dead_letter_for(stream))
    ]
    [letter] = letters
    assert (letter[b"reason"], letter[b"handler"], letter[b"attempts"]) == (
        b"handler_failed",
        b"check:broken",
        str(settings.handler_max_attempts).encode(),
    )
    assert b"pager is down" in letter[b"error"]


def test_a_check_the_code_location_lacks_is_dead_lettered(
    redis_url: str, redis_client: redis.Redis, worker_settings: WorkerSettings
) -> None:
    fire_stale(redis_url)

    burst(CodeLocation(module_name="tests.empty"), worker_settings)

    [letter] = [
        fields
        for stream in KEYS.all_event_streams()
        for _, fields in read_stream(redis_client, KEYS.dead_letter_for(stream))
    ]
    assert (letter[b"reason"], letter[b"handler"]) == (b"unknown_hook", b"check:quiet_is_stale")


def test_run_status_sensors_ignore_check_events(
    redis_url: str, redis_client: redis.Redis, worker_settings: WorkerSettings
) -> None:
    # A failure sensor and a sensor on every run state, next to the checks.
    everything = run_status_sensor(run_status=list(RunState), name="everything")(
        basic.etl_failures.fn
    )
    sensors = {basic.etl_failures.name: basic.etl_failures, "everything": everything}
    location = replace(CodeLocation.load("tests.code_locations.checked"), sensors=sensors)
    burst(location, worker_settings)  # creates the sensors' groups (they start at "now")
    [event] = fire_stale(redis_url)
    basic.CALLS.clear()

    worker = burst(location, worker_settings)

    assert worker.handled == 3  # the hooks group and each sensor's group saw it
    assert [name for name, _ in checked.FIRED] == ["quiet_is_stale"]
    assert basic.CALLS == []
    assert not is_recorded(redis_client, KEYS, event, "sensor:everything")
    assert read_stream(redis_client, KEYS.dead_letter_stream(0)) == []


def test_workers_schedule_the_checks_of_their_code_location(
    worker_settings: WorkerSettings, redis_url: str
) -> None:
    location = CodeLocation.load("tests.code_locations.checked")
    client = aioredis.Redis.from_url(redis_url)
    runner = CheckRunner(client, keys=KEYS, checks=list(location.checks.values()))
    jobs = maintenance_jobs(client, worker_settings, checks=runner)

    assert [job.name for job in jobs] == ["crash-detection", "retention", "time-checks"]
    assert sorted(location.checks) == [
        "broken",
        "etl_keeps_failing",
        "flaky_check",
        "hanging_too_long",
        "never_started",
        "page_when_stale",
        "quiet_is_stale",
    ]


def test_a_failure_count_check_needs_at_least_one_failure() -> None:
    with pytest.raises(ConfigError, match=r"failure_count_check 'x' needs failures >= 1: got 0"):
        failure_count_check(job="etl", failures=0, within=timedelta(hours=1), name="x")


def test_repr() -> None:
    assert repr(checked.etl_keeps_failing) == (
        "<CheckDefinition name='etl_keeps_failing' kind=failure_count job='etl' within=1:00:00>"
    )
