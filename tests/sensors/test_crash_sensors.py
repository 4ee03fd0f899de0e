"""A job's whole process group SIGKILLed mid-op: with three workers, the crash is published
once, and the ``on_crashed`` hook and the run failure sensor each fire once."""

from __future__ import annotations

import os
import signal
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import redis

from bus import HOOKS_GROUP, Keys, RunEvent
from tests.code_locations import lifecycle
from tests.conftest import TEST_PREFIX
from tests.engine.test_crash import hookbus_run, live_record, run_config, run_events
from tests.processes import wait_until, worker_process

KEYS = Keys(prefix=TEST_PREFIX)
# With the engines' heartbeat timeout (0.6 s below): a worker claims no crash before its
# link to Redis was steady that long, and the default 10 s left little of a 10 s wait.
FAST = {
    "HOOKBUS_CRASH_CHECK_INTERVAL_S": "0.1",
    "HOOKBUS_CLAIM_IDLE_MS": "600",
    "HOOKBUS_HEARTBEAT_TIMEOUT_S": "0.6",
}


def settled(client: redis.Redis) -> bool:
    groups = client.xinfo_groups(KEYS.events_stream(0))
    return all(group["pending"] == 0 and group["lag"] == 0 for group in groups)


def test_a_killed_job_fires_on_crashed_and_the_failure_sensor_once_with_three_workers(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    config, _ = run_config(tmp_path)
    with ExitStack() as stack:
        for name in ("w1", "w2", "w3"):
            stack.enter_context(
                worker_process(
                    "tests.code_locations.crashing",
                    redis_url=redis_url,
                    prefix=TEST_PREFIX,
                    consumer=name,
                    env=FAST,
                )
            )
        parent = stack.enter_context(
            hookbus_run(
                redis_url,
                tmp_path,
                config,
                env={"HOOKBUS_HEARTBEAT_INTERVAL_S": "0.1", "HOOKBUS_HEARTBEAT_TIMEOUT_S": "0.6"},
            )
        )
        record = live_record(redis_client)
        os.killpg(parent.pid, signal.SIGKILL)  # the supervisor too: only workers can tell
        parent.wait()

        def fired() -> Counter[str]:
            return Counter(call["hook"] for call in lifecycle.calls(redis_client))

        wait_until(lambda: fired() == {"cleanup": 1, "crash_report": 1}, what="hook and sensor")
        wait_until(lambda: settled(redis_client), what="every group to ack everything")
        assert redis_client.xpending(KEYS.events_stream(0), HOOKS_GROUP)["pending"] == 0

    crashes = [
        event
        for event in run_events(redis_client, record.run.run_id)
        if isinstance(event, RunEvent) and event.to_state == "crashed"
    ]
    assert len(crashes) == 1
    assert fired() == {"cleanup": 1, "crash_report": 1}
    assert {call["run_id"] for call in lifecycle.calls(redis_client)} == {record.run.run_id}
