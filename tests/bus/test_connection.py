"""The worker's asyncio client under more concurrent commands than it has connections."""

from __future__ import annotations

import asyncio

import redis

from bus.connection import ASYNC_POOL_SIZE, connect_async
from bus.settings import BusSettings


def test_commands_beyond_the_pool_size_wait_for_a_connection(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # Each BLPOP holds its connection for 0.1 s; 1.5x the pool size must queue, not fail
    # (redis-py's default pool raised MaxConnectionsError past its 100th connection).
    async def main() -> list[object]:
        client = connect_async(BusSettings(redis_url=redis_url))
        try:
            return await asyncio.gather(
                *(client.blpop(["hookbus-test:empty"], timeout=0.1) for _ in range(150))
            )
        finally:
            await client.aclose()

    assert ASYNC_POOL_SIZE < 150
    assert asyncio.run(main()) == [None] * 150
