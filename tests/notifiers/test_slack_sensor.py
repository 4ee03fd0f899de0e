"""``make_slack_on_run_failure_sensor`` in a real worker against the Slack stand-in."""

from __future__ import annotations

import asyncio
import json

import pytest

from engine import EngineSettings
from notifiers.testing import FakeSlackServer
from sensors import CodeLocation, Worker, WorkerSettings, make_slack_on_run_failure_sensor
from sensors.errors import CodeLocationError
from tests.code_locations import slack_sensors

LOCATION = "tests.code_locations.slack_sensors"


def burst(settings: WorkerSettings) -> None:
    async def run() -> None:
        worker = Worker(
            CodeLocation.load(LOCATION), settings, env={"SLACK_BOT_TOKEN": "xoxb-sensor"}
        )
        try:
            await worker.run_until_idle()
        finally:
            await worker.close()

    asyncio.run(run())


def test_failed_runs_of_monitored_jobs_are_posted(
    engine_settings: EngineSettings, worker_settings: WorkerSettings
) -> None:
    with FakeSlackServer() as slack:
        settings = worker_settings.model_copy(update={"slack_base_url": slack.base_url})
        burst(settings)  # create the groups
        result = slack_sensors.doomed.execute_in_process(
            raise_on_error=False, settings=engine_settings
        )
        slack_sensors.unwatched.execute_in_process(raise_on_error=False, settings=engine_settings)
        burst(settings)

        by_channel = {message["channel"]: message for message in slack.messages()}
        requests = slack.requests

    assert sorted(by_channel) == ["#data-alerts", "#terse"]
    assert all(r.headers["Authorization"] == "Bearer xoxb-sensor" for r in requests)
    alert = by_channel["#data-alerts"]
    raw = json.dumps(alert)
    assert "<!channel>" not in raw and "&lt;!channel&gt; the warehouse is gone" in raw
    assert f"https://hookbus.example.com/runs/{result.run_id}" in raw
    assert "`team=data`" in raw
    terse = by_channel["#terse"]
    assert terse["text"] == f"doomed is down ({result.run_id})" and "blocks" not in terse


def test_the_token_is_not_captured_when_the_sensor_is_defined() -> None:
    with pytest.raises(CodeLocationError, match="slack_token must not be the token itself"):
        make_slack_on_run_failure_sensor("#a", "xoxb-literal")  # type: ignore[arg-type]
    sensor = slack_sensors.slack_on_failure
    assert repr(sensor) == (
        "<SensorDefinition name='slack_on_run_failure' states=['crashed', 'failed'] "
        "jobs=['doomed']>"
    )
    assert "xoxb" not in repr(sensor.resource_defs)
