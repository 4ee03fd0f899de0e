"""The worker's long-running loops, and how they are kept alive.

Each subscription's read loop runs ``supervised``: an unexpected error (a Redis
``ResponseError`` other than ``NOGROUP``, a bug of ours) is logged with the group and the
traceback, counted (``hookbus_reader_restarts``), and the loop starts again after a
backoff, so one group never stops reading silently while the heartbeat says the worker is
fine. Redis being away and a lost group are handled inside the loop itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

import redis
import redis.asyncio as aioredis

from bus.backoff import Backoff
from sensors.metrics import READER_RESTARTS
from sensors.settings import WorkerSettings
from sensors.subscription import Subscription

logger = logging.getLogger(__name__)


async def supervised(
    loop: Callable[[], Awaitable[None]], *, group: str, stopping: asyncio.Event, backoff: Backoff
) -> None:
    """Run ``loop()`` until ``stopping`` is set, restarting it (with backoff) when it fails.

    Consecutive failures lengthen the pause; a loop that ran longer than the longest pause
    before failing starts the count again.
    """
    failures = 0
    while not stopping.is_set():
        started = time.monotonic()
        try:
            await loop()
            return
        except Exception:
            failures = 1 if time.monotonic() - started > backoff.max_s else failures + 1
            delay_s = backoff.delay_s(failures) or backoff.max_s
            READER_RESTARTS.labels(group).inc()
            logger.exception(
                "read loop failed group=%s failures=%d; restarting it in %.2fs",
                group,
                failures,
                delay_s,
            )
            await pause(stopping, delay_s)


async def pause(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep up to ``seconds``, waking early when ``stopping`` is set."""
    try:
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
    except TimeoutError:
        pass


async def cancel_all(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait for them to end."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def keep_fresh(subscriptions: list[Subscription], settings: WorkerSettings) -> None:
    """Refresh held entries so no one reclaims them; retry acks that failed. Runs until
    cancelled."""
    interval_s = settings.claim_idle_ms / 3000
    while True:
        await asyncio.sleep(interval_s)
        for subscription in subscriptions:
            try:
                await subscription.refresh()
                await subscription.flush_acks()
            except redis.RedisError as exc:
                logger.warning(
                    "refresh failed group=%s (%s); trying again in %.1fs",
                    subscription.group,
                    type(exc).__name__,
                    interval_s,
                )


#: How often a worker logs what it did since its last progress line, in seconds.
PROGRESS_INTERVAL_S = 60.0


async def report_progress(
    counts: Callable[[], dict[str, int]], *, interval_s: float = PROGRESS_INTERVAL_S
) -> None:
    """Log one INFO line per interval with what the worker did meanwhile (nothing if idle).

    Handler successes are DEBUG lines (one per handler would flood the log at thousands
    a second); this line says the worker is working. Runs until cancelled.
    """
    before = counts()
    while True:
        await asyncio.sleep(interval_s)
        now = counts()
        done = {name: now[name] - before.get(name, 0) for name in now}
        before = now
        if any(done.values()):
            logger.info(
                "progress in the last %gs: %s",
                interval_s,
                " ".join(f"{name}={count}" for name, count in done.items()),
            )


async def heartbeat(client: aioredis.Redis, settings: WorkerSettings, location: str) -> None:
    """Keep the worker's liveness key set (expiring after three missed beats). Runs until
    cancelled."""
    key = settings.keys.worker_heartbeat(settings.consumer_name)
    ttl_s = max(1, int(settings.heartbeat_interval_s * 3))
    while True:
        try:
            await client.set(key, location, ex=ttl_s)
        except redis.RedisError as exc:
            logger.warning("worker heartbeat failed (%s); retrying", type(exc).__name__)
        await asyncio.sleep(settings.heartbeat_interval_s)
