"""Time-based checks in real worker processes: two workers, one event, one call, one alert."""

from __future__ import annotations

from pathlib import Path

import redis

from bus import Keys
from notifiers.testing import FakeSlackServer
from tests.conftest import TEST_PREFIX
from tests.processes import wait_until, worker_process
from tests.streams import read_check_events

KEYS = Keys(prefix=TEST_PREFIX)


def test_two_workers_publish_one_check_event_run_its_function_once_and_alert_once(
    redis_client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    calls = tmp_path / "calls.txt"
    with FakeSlackServer() as slack:
        env = {
            "SLACK_BOT_TOKEN": "xoxb-checks",
            "HOOKBUS_SLACK_BASE_URL": slack.base_url,
            "HOOKBUS_CHECK_INTERVAL_S": "0.2",
            "CHECK_CALLS_FILE": str(calls),
        }
        common = {"redis_url": redis_url, "prefix": TEST_PREFIX, "env": env}
        module = "tests.code_locations.checks_alerting"
        with (
            worker_process(module, consumer="w1", **common),  # type: ignore[arg-type]
            worker_process(module, consumer="w2", **common),  # type: ignore[arg-type]
        ):
            [request] = slack.wait_for_requests(1, timeout_s=20)
            wait_until(calls.exists, what="the check function to run")
            # Both workers keep evaluating (one at a time, under the lease) for several more
            # intervals; the occurrence is published once, so nothing more happens.
            lease = KEYS.lease("time-checks")
            holder = wait_until(lambda: redis_client.get(lease), what="the lease")
            first_ttl = redis_client.pttl(lease)
            wait_until(
                lambda: redis_client.pttl(lease) > first_ttl or redis_client.get(lease) != holder,
                what="a later evaluation",
            )
            events = [
                event
                for stream in KEYS.all_event_streams()
                for event in read_check_events(redis_client, stream)
            ]

    [event] = events
    assert (event.check_name, event.job_name) == ("nightly_is_stale", "nightly_etl")
    assert calls.read_text().splitlines() == [f"{event.event_id} {event.message}"]
    assert request.body["channel"] == "#data-alerts"
    assert "No successful run" in str(request.body["blocks"])
    assert slack.requests == [request]
