"""Redis clients: the worker's asyncio pool under load, and how connections name the driver."""

from __future__ import annotations

import asyncio

import redis

from bus.connection import ASYNC_POOL_SIZE, connect, connect_async
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


def test_clients_name_the_driver_as_redis_py_does_without_reading_package_metadata(
    redis_url: str,
) -> None:
    # redis-py's default reads its version from the package metadata for every new
    # connection (0.7 ms each, on the way to an engine's first event); ours is given once.
    settings = BusSettings(redis_url=redis_url)
    client = connect(settings)
    try:
        info = client.connection_pool.connection_kwargs["driver_info"]
        assert (info.formatted_name, info.lib_version) == ("redis-py", redis.__version__)
        assert client.ping()
    finally:
        client.close()
