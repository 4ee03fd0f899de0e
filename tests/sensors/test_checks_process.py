"""Time-based checks in real worker processes: two workers, one event, one call, one alert;
and a check's state lives in Redis, whichever worker evaluates it next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import redis

from bus import Keys, RunInfo, RunState
from bus.runs import RunRecord
from notifiers.testing import FakeSlackServer
from tests.conftest import TEST_PREFIX
from tests.processes import wait_until, worker_process
from tests.streams import read_check_events

KEYS = Keys(prefix=TEST_PREFIX)
MODULE = "tests.code_locations.checks_alerting"


def check_events(client: redis.Redis) -> list[Any]:
    return [
        event for stream in KEYS.all_event_streams() for event in read_check_events(client, stream)
    ]


def wait_for_later_evaluation(client: redis.Redis) -> None:
    """Both workers keep evaluating (one at a time, under the lease): wait for one more."""
    lease = KEYS.lease("time-checks")
    holder = wait_until(lambda: client.get(lease), what="the lease")
    last_ttl = [int(client.pttl(lease))]

    def renewed() -> bool:
        # Each evaluation renews the lease: its TTL goes back up between two looks. (Not
        # "above the first look": read just after a renewal, that is already the maximum.)
        ttl = int(client.pttl(lease))
        went_up, last_ttl[0] = ttl > last_ttl[0], ttl
        return went_up or client.get(lease) != holder

    wait_until(renewed, what="a later evaluation")


def test_two_workers_publish_one_check_event_run_its_function_once_and_alert_once(
    redis_client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    since = datetime.now(UTC) - timedelta(hours=2)
    run = RunInfo(run_id="r-1", run_name="nightly-42", job_name="nightly_etl", started_at=since)
    record = RunRecord(run=run, seq=2, state=RunState.RUNNING, state_since=since)
    redis_client.hset(KEYS.run_record("r-1"), mapping=cast(Any, record.to_hash()))
    redis_client.zadd(KEYS.runs_alive_for_run("r-1"), {"r-1": 9_999_999_999})
    calls = tmp_path / "calls.txt"
    with FakeSlackServer() as slack:
        env = {
            "SLACK_BOT_TOKEN": "xoxb-checks",
            "HOOKBUS_SLACK_BASE_URL": slack.base_url,
            "HOOKBUS_CHECK_INTERVAL_S": "0.2",
            "CHECK_CALLS_FILE": str(calls),
        }
        common = {"redis_url": redis_url, "prefix": TEST_PREFIX, "env": env}
        with (
            worker_process(MODULE, consumer="w1", **common),  # type: ignore[arg-type]
            worker_process(MODULE, consumer="w2", **common),  # type: ignore[arg-type]
        ):
            [request] = slack.wait_for_requests(1, timeout_s=20)
            wait_until(calls.exists, what="the check function to run")
            # Several more evaluations, on either worker: the run is still stuck in the same
            # state, so nothing more is published (no repeat_every).
            wait_for_later_evaluation(redis_client)
            wait_for_later_evaluation(redis_client)
            events = check_events(redis_client)

    [event] = events
    assert (event.check_name, event.run_id) == ("nightly_is_stuck", "r-1")
    assert calls.read_text().splitlines() == [f"{event.event_id} {event.message}"]
    assert request.body["channel"] == "#data-alerts"
    assert "Run still running" in str(request.body["blocks"]) and "nightly-42" in str(request.body)
    assert slack.requests == [request]


def test_freshness_counts_its_window_from_when_it_began_watching_whichever_worker_evaluates(
    redis_client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    with FakeSlackServer() as slack:
        env = {
            "SLACK_BOT_TOKEN": "xoxb-checks",
            "HOOKBUS_SLACK_BASE_URL": slack.base_url,
            "HOOKBUS_CHECK_INTERVAL_S": "0.2",
            "CHECK_FRESH_WINDOW_S": "2",
            "CHECK_CALLS_FILE": str(tmp_path / "calls.txt"),
        }
        common = {"redis_url": redis_url, "prefix": TEST_PREFIX, "env": env}
        with (
            worker_process(MODULE, consumer="w1", **common),  # type: ignore[arg-type]
            worker_process(MODULE, consumer="w2", **common),  # type: ignore[arg-type]
        ):
            state = KEYS.check_state("nightly_is_stale", "nightly_etl")
            watching = wait_until(
                lambda: redis_client.hget(state, "watching_since"), what="watching to begin"
            )
            wait_until(lambda: check_events(redis_client), timeout_s=20, what="a check event")
            events = check_events(redis_client)
            assert redis_client.hget(state, "watching_since") == watching  # set once

    watching_since = datetime.fromtimestamp(float(cast(bytes, watching)), UTC)
    first = events[0]
    assert first.check_name == "nightly_is_stale"
    assert first.watching_since == watching_since
    assert first.occurred_at - watching_since >= timedelta(seconds=2)  # a full window
    assert len({event.event_id for event in events}) == len(events)  # one per occurrence
