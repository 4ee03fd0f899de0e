"""Watching the watcher: one announcement when the alerting path breaks, one when it heals."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import redis
import redis.asyncio as aioredis

from engine import EngineSettings
from notifiers.errors import PermanentNotifierError
from notifiers.testing import FakeSlackServer
from sensors.settings import WatchSettings
from sensors.watcher import Watcher
from tests.code_locations import basic
from tests.conftest import TEST_PREFIX
from tests.processes import ROOT, wait_until, worker_process


class RecordingNotifier:
    def __init__(self, *, broken: bool = False) -> None:
        self.posted: list[str] = []
        self.broken = broken

    def post(self, text: str, *, blocks: object = None) -> str | None:
        if self.broken:
            raise PermanentNotifierError("channel_not_found")
        self.posted.append(text)
        return None


def rounds_at(
    redis_url: str, client: redis.Redis, moments: list[float], *notifiers: RecordingNotifier
) -> list[list[str]]:
    """Run one watcher round at each moment (seconds), with announcements after 10 s."""
    settings = WatchSettings(
        redis_url=redis_url,
        key_prefix=TEST_PREFIX,
        min_workers=0,
        watch_for_s=10,
        watch_renotify_s=100,
    )

    async def run() -> list[list[str]]:
        lease_client = aioredis.Redis.from_url(redis_url)
        watcher = Watcher(client, lease_client, settings=settings, notifiers=notifiers, owner="t")
        try:
            return [await watcher.check_once(now=moment) for moment in moments]
        finally:
            await lease_client.aclose()

    return asyncio.run(run())


def test_dead_letters_are_announced_once_reminded_late_and_resolved(
    redis_url: str, redis_client: redis.Redis
) -> None:
    notifier = RecordingNotifier()
    dead = "{hookbus-test:s0}:dead"
    for _ in range(3):
        redis_client.xadd(dead, {"reason": "handler_failed", "payload": ""})

    rounds = rounds_at(redis_url, redis_client, [1000, 1005, 1011, 1050, 1112], notifier)
    redis_client.delete(dead)
    rounds += rounds_at(redis_url, redis_client, [1120, 1130], notifier)

    assert [len(messages) for messages in rounds] == [0, 0, 1, 0, 1, 1, 0]
    assert notifier.posted[0].startswith("FIRING hookbus dead_letters: 3 dead letter(s) waiting")
    assert notifier.posted[-1] == "RESOLVED hookbus dead_letters: cleared after 2m00s."


def test_a_failing_notifier_falls_back_to_the_next(
    redis_url: str, redis_client: redis.Redis
) -> None:
    broken, backup = RecordingNotifier(broken=True), RecordingNotifier()
    redis_client.xadd("{hookbus-test:s0}:dead", {"reason": "invalid_json", "payload": ""})
    rounds_at(redis_url, redis_client, [0, 20], broken, backup)
    assert len(backup.posted) == 1 and broken.posted == []


def test_no_live_worker_is_announced_once_then_resolved_when_a_worker_returns(
    redis_url: str, engine_settings: EngineSettings
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOOKBUS_REDIS_URL": redis_url,
        "HOOKBUS_KEY_PREFIX": TEST_PREFIX,
        "HOOKBUS_WATCH_INTERVAL_S": "0.1",
        "HOOKBUS_WATCH_FOR_S": "0.3",
        "SLACK_BOT_TOKEN": "xoxb-watch",
    }
    with FakeSlackServer() as slack:
        env["HOOKBUS_SLACK_BASE_URL"] = slack.base_url
        watcher = subprocess.Popen([sys.executable, "-m", "sensors", "watch"], env=env, cwd=ROOT)
        try:
            for _ in range(3):  # events keep arriving while no worker runs
                basic.quiet.execute_in_process(settings=engine_settings)
            [firing] = [r.body["text"] for r in slack.wait_for_requests(1)]
            assert firing.startswith("FIRING hookbus alerting_stalled: 0 live worker(s)")
            with worker_process(
                "tests.code_locations.basic", redis_url=redis_url, prefix=TEST_PREFIX
            ):
                resolved = wait_until(
                    lambda: [
                        m["text"] for m in slack.messages() if m["text"].startswith("RESOLVED")
                    ],
                    what="the resolved announcement",
                )
            assert resolved == [resolved[0]] and "alerting_stalled" in resolved[0]
            assert len([m for m in slack.messages() if "alerting_stalled" in m["text"]]) == 2
        finally:
            watcher.terminate()
            watcher.wait(timeout=10)
