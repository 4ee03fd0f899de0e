"""Periodic jobs under APScheduler: one worker at a time holds each job's lease."""

from __future__ import annotations

import asyncio
from collections import Counter

import redis.asyncio as aioredis

from bus import Keys
from sensors.schedule import Periodic, PeriodicJob
from tests.conftest import TEST_PREFIX

KEYS = Keys(prefix=TEST_PREFIX)


def periodic(client: aioredis.Redis, owner: str, ran: Counter[str]) -> Periodic:
    async def sweep() -> None:
        ran[owner] += 1

    return Periodic(client, keys=KEYS, owner=owner, jobs=[PeriodicJob("sweep", sweep, 0.05)])


def test_only_the_lease_holder_runs_a_job_and_another_takes_over_when_it_dies(
    redis_url: str, redis_client: object
) -> None:
    async def scenario() -> tuple[Counter[str], Counter[str]]:
        client = aioredis.Redis.from_url(redis_url)
        ran: Counter[str] = Counter()
        first, second = periodic(client, "w1", ran), periodic(client, "w2", ran)
        first.start()
        await asyncio.sleep(0.05)
        second.start()
        await asyncio.sleep(0.4)
        together = Counter(ran)
        first._scheduler.shutdown(wait=False)  # type: ignore[union-attr]  # dies: no release
        await asyncio.sleep(1.5)  # the lease (1 s) lapses; w2's next tick takes it
        await second.stop()
        await client.aclose()
        return together, ran

    together, total = asyncio.run(scenario())

    assert together["w1"] >= 3 and together["w2"] == 0
    assert total["w2"] >= 3


def test_a_stopping_worker_gives_its_leases_back_at_once(
    redis_url: str, redis_client: object
) -> None:
    async def scenario() -> Counter[str]:
        client = aioredis.Redis.from_url(redis_url)
        ran: Counter[str] = Counter()
        first, second = periodic(client, "w1", ran), periodic(client, "w2", ran)
        first.start()
        await asyncio.sleep(0.1)
        await first.stop()
        second.start()
        await asyncio.sleep(0.3)
        await second.stop()
        await client.aclose()
        return ran

    ran = asyncio.run(scenario())

    assert ran["w2"] >= 3


def test_repr(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    assert repr(periodic(client, "w1", Counter())) == "<Periodic owner='w1' jobs=['sweep']>"
