"""The walking skeleton, end to end: a failing op reaches (fake) Slack through Redis."""

from __future__ import annotations

import os

from bus import RunState
from engine import EngineSettings
from notifiers.testing import FakeSlackServer
from tests.code_locations.skeleton import failing_job
from tests.conftest import TEST_PREFIX
from tests.processes import worker_process


def test_failing_op_alert_is_posted_by_the_worker_process(
    redis_url: str, engine_settings: EngineSettings
) -> None:
    with (
        FakeSlackServer() as slack,
        worker_process(
            "tests.code_locations.skeleton",
            redis_url=redis_url,
            prefix=TEST_PREFIX,
            env={
                "SLACK_BOT_TOKEN": "xoxb-test-token",
                "SLACK_CHANNEL": "#data-alerts",
                "HOOKBUS_SLACK_BASE_URL": slack.base_url,
            },
        ) as worker,
    ):
        result = failing_job.execute_in_process(raise_on_error=False, settings=engine_settings)

        requests = slack.wait_for_requests(1, timeout_s=15)

    assert result.state is RunState.FAILED
    assert len(requests) == 1
    request = requests[0]
    assert request.method == "chat.postMessage"
    assert request.headers["Authorization"] == "Bearer xoxb-test-token"
    assert request.body["channel"] == "#data-alerts"
    text = request.body["text"]
    assert "failing_job" in text and "explode" in text
    assert "RuntimeError: warehouse refused row 41" in text
    assert f"[pid {worker.pid}]" in text
    assert f"[pid {os.getpid()}]" not in text
