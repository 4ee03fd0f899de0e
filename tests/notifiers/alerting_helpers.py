"""Running notification rules in an in-process worker (burst mode) for tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

import redis

from bus import Keys, OpEvent, Publisher, RunEvent
from notifiers import NotificationRule
from sensors import CodeLocation, Worker, WorkerSettings
from tests.conftest import TEST_PREFIX
from tests.streams import read_stream

KEYS = Keys(prefix=TEST_PREFIX)
ENV = {"SLACK_BOT_TOKEN": "xoxb-rules"}


def location(*rules: NotificationRule) -> CodeLocation:
    return CodeLocation(module_name="tests.rules", rules={rule.name: rule for rule in rules})


def burst(loc: CodeLocation, settings: WorkerSettings, *, env: Mapping[str, str] = ENV) -> Worker:
    """Run a worker until nothing is waiting (the first call also creates the groups)."""

    async def run() -> Worker:
        worker = Worker(loc, settings, env=env)
        try:
            await worker.run_until_idle()
        finally:
            await worker.close()
        return worker

    return asyncio.run(run())


def publish(client: redis.Redis, events: Iterable[RunEvent | OpEvent]) -> None:
    publisher = Publisher(client, keys=KEYS)
    for event in events:
        publisher.publish(event)


def suppressed(client: redis.Redis) -> list[dict[str, str]]:
    return [
        {key.decode(): value.decode() for key, value in fields.items()}
        for _, fields in read_stream(client, KEYS.suppressed_alerts())
    ]
