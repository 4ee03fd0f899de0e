"""The lease: one holder at a time, renewable, released only by its holder, expiring."""

from __future__ import annotations

import asyncio

import redis
import redis.asyncio as aioredis

from bus.lease import Lease


def test_one_holder_at_a_time_and_expiry(redis_url: str, redis_client: redis.Redis) -> None:
    async def scenario() -> list[bool]:
        client = aioredis.Redis.from_url(redis_url)
        first = Lease(client, key="lease:t", owner="a", ttl_ms=200)
        second = Lease(client, key="lease:t", owner="b", ttl_ms=200)
        try:
            results = [await first.acquire(), await second.acquire(), await first.acquire()]
            results.append(await second.release())  # b does not hold it: no effect
            results.append(await second.acquire())
            await asyncio.sleep(0.3)  # a "dies": its lease expires
            results.append(await second.acquire())
            results.append(await second.release())
            results.append(await first.acquire())
            return results
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == [True, False, True, False, False, True, True, True]
