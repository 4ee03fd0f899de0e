"""Redis clients built from settings, one place, so every process connects the same way."""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

from bus.settings import BusSettings


def connect(settings: BusSettings) -> redis.Redis:
    """A synchronous client (the engine's): raw bytes in and out."""
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=30,
    )


def connect_async(settings: BusSettings) -> aioredis.Redis:
    """An asyncio client (the worker's). Blocking reads pass their own timeout."""
    return aioredis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=30,
    )
