"""Redis clients built from settings, one place, so every process connects the same way."""

from __future__ import annotations

import socket
from typing import cast
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.driver_info import DriverInfo
from redis.retry import Retry

from bus.settings import BusSettings

#: Connections a worker's asyncio client opens at most (redis-py's default cap); commands
#: beyond it wait for one to be free.
ASYNC_POOL_SIZE = 100
#: What each connection tells Redis in ``CLIENT SETINFO`` (the same as redis-py's default),
#: given explicitly: by default redis-py reads its own version from the installed package
#: metadata (``importlib.metadata``) for every new connection, 0.7 ms of CPU each time, on
#: the way to an engine's first event.
_DRIVER_INFO = DriverInfo(name="redis-py", lib_version=redis.__version__)


def connect(settings: BusSettings) -> redis.Redis:
    """A synchronous client (the engine's): raw bytes in and out."""
    if settings.redis_cluster:
        # RedisCluster speaks the same commands; typed as Redis so callers need not care.
        return cast(
            redis.Redis,
            RedisCluster.from_url(
                settings.redis_url,
                socket_timeout=settings.redis_timeout_s,
                socket_connect_timeout=settings.redis_timeout_s,
                driver_info=_DRIVER_INFO,
            ),
        )
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=30,
        driver_info=_DRIVER_INFO,
        # Never send a command again on its own (``from_url`` gives no retries today, but
        # ``redis.Redis()`` gives 10): after a lost reply only the publisher may resend an
        # event, without the first-send mark (``bus.publisher.may_resend``).
        retry=Retry(NoBackoff(), 0),
    )


def connect_async(settings: BusSettings, *, kernel_liveness: bool = False) -> aioredis.Redis:
    """An asyncio client. Blocking reads pass their own timeout.

    Every command times out after ``redis_timeout_s`` (the socket timeout), except with
    ``kernel_liveness`` (the worker's hot path, over TCP): then the kernel fails commands
    to a Redis that is gone instead (``kernel_liveness_options``), without a timer per
    command. A ``unix://`` Redis always gets the socket timeout (no TCP options apply).

    Its pool *waits* for a free connection (up to ``redis_timeout_s``) instead of failing:
    a worker handles hundreds of entries at once, and with redis-py's default pool every
    command past the 100th connection raised ``MaxConnectionsError``, leaving its entry
    pending until a reclaim (``claim_idle_ms`` later).
    """
    if settings.redis_cluster:
        return cast(
            aioredis.Redis,
            AsyncRedisCluster.from_url(
                settings.redis_url,
                socket_connect_timeout=settings.redis_timeout_s,
                max_connections=ASYNC_POOL_SIZE,
                driver_info=_DRIVER_INFO,
            ),
        )
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=ASYNC_POOL_SIZE,
        timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=30,
        driver_info=_DRIVER_INFO,
        **_timeouts(settings, kernel_liveness=kernel_liveness),
    )
    return aioredis.Redis.from_pool(pool)


def redacted_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, safe to print or log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _timeouts(settings: BusSettings, *, kernel_liveness: bool) -> dict[str, object]:
    """The asyncio pool's socket timeout, or the kernel's liveness options instead."""
    over_tcp = urlsplit(settings.redis_url).scheme in ("redis", "rediss")
    if kernel_liveness and over_tcp:
        return {
            "socket_timeout": None,
            "socket_keepalive_options": kernel_liveness_options(settings.redis_timeout_s),
        }
    return {"socket_timeout": settings.redis_timeout_s}


def kernel_liveness_options(timeout_s: float) -> dict[int, int]:
    """TCP options that make the kernel notice a Redis that is gone within ``timeout_s``.

    The worker's asyncio client has no per-command socket timeout: in redis-py that is an
    ``asyncio.wait_for`` task for every write and a timer for every read, about 35 µs of
    the loop's CPU per command (a third of each command's cost, measured), paid on the way
    to every alert. The kernel keeps the same promise for free: ``TCP_USER_TIMEOUT`` fails
    a command whose bytes Redis has not acknowledged within ``timeout_s`` (Redis killed,
    its machine gone, the network cut), and keepalive probes find a dead peer under an
    idle connection (a read blocked in ``XREADGROUP``) within about twice ``timeout_s``.
    A Redis process that is alive but does not answer (stopped with SIGSTOP, a long
    script) holds the worker's commands until it answers, as it holds every client's.
    """
    seconds = max(1, round(timeout_s))
    options = {
        socket.TCP_KEEPIDLE: seconds,
        socket.TCP_KEEPINTVL: max(1, seconds // 3),
        socket.TCP_KEEPCNT: 3,
    }
    user_timeout = getattr(socket, "TCP_USER_TIMEOUT", None)  # Linux only
    if user_timeout is not None:
        options[user_timeout] = max(1, int(timeout_s * 1000))
    return options


def may_resend(client: redis.Redis) -> bool:
    """Whether ``client`` may send a command again on its own after a lost reply: a Redis
    Cluster client does, and so does a client with retries (``redis.Redis()`` has 10;
    ``connect`` gives none)."""
    if isinstance(client, RedisCluster):
        return True
    retry = client.get_retry()
    return retry is not None and retry.get_retries() > 0
