"""A sensor with ``request_job`` starts that job (as a supervised ``hookbus run``), once per
run key even when its event is delivered again."""

from __future__ import annotations

import asyncio
import os

import redis

from bus import HOOKS_GROUP, Keys, RunEvent, RunState
from engine import EngineSettings
from sensors import CodeLocation, RunRequest, Worker, WorkerSettings
from sensors.run_requests import run_requests
from tests.code_locations import chained
from tests.conftest import TEST_PREFIX
from tests.ledger_records import forget_successes
from tests.processes import ROOT, wait_until
from tests.streams import read_events

KEYS = Keys(prefix=TEST_PREFIX)


def burst(settings: WorkerSettings, redis_url: str) -> Worker:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOOKBUS_REDIS_URL": redis_url,
        "HOOKBUS_KEY_PREFIX": TEST_PREFIX,
    }

    async def run() -> Worker:
        worker = Worker(CodeLocation.load("tests.code_locations.chained"), settings, env=env)
        try:
            await worker.run_until_idle()
        finally:
            await worker.close()
        return worker

    return asyncio.run(run())


def cleanup_runs(client: redis.Redis) -> list[RunEvent]:
    return [
        event
        for event in read_events(client, KEYS.events_stream(0))
        if isinstance(event, RunEvent)
        and event.job_name == "cleanup_job"
        and event.to_state is RunState.COMPLETED
    ]


def test_a_failure_sensor_starts_its_request_job_once(
    redis_url: str,
    redis_client: redis.Redis,
    engine_settings: EngineSettings,
    worker_settings: WorkerSettings,
) -> None:
    burst(worker_settings, redis_url)
    chained.nightly.execute_in_process(raise_on_error=False, settings=engine_settings)

    chained.FAILED_OPS.clear()
    worker = burst(worker_settings, redis_url)
    assert chained.FAILED_OPS == [["explode: nightly load failed"]]
    [completed] = wait_until(
        lambda: cleanup_runs(redis_client), timeout_s=20, what="the requested run"
    )

    redis_client.xgroup_setid(KEYS.events_stream(0), "sensor:repair_after_failure", "0")
    forget_successes(redis_client, KEYS)
    again = burst(worker_settings, redis_url)

    assert (worker.launcher.launched, again.launcher.launched) == (1, 0)
    assert completed.job_name == "cleanup_job"
    assert len(cleanup_runs(redis_client)) == 1
    assert redis_client.xpending(KEYS.events_stream(0), HOOKS_GROUP)["pending"] == 0


def test_run_requests_accepts_one_many_or_none() -> None:
    one = RunRequest(run_key="a")
    assert run_requests(one) == [one]
    assert run_requests([one, "x", RunRequest()]) == [one, RunRequest()]
    assert run_requests(None) == []
    assert run_requests({"run_key": "a"}) == []
