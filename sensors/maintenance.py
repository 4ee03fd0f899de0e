"""The periodic jobs every worker schedules (``sensors.schedule``), one holder at a time.

- ``crash-detection``: runs whose heartbeat deadline passed are published as crashed
  (``sensors.crash_detection.CrashDetector``), so ``on_crashed`` hooks and failure
  sensors fire after the job's whole machine is gone — not before the worker has been
  connected to Redis for a heartbeat timeout, so an outage is not taken for crashes.
- ``time-checks``: the code location's time-based checks (``sensors.checks``).
- ``retention``: event streams trimmed by age and size without passing any consumer
  group (``bus.retention``), dead letters by age.
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis

from bus.retention import trim_by_age, trim_events
from sensors.check_runner import CheckRunner
from sensors.crash_detection import CrashDetector
from sensors.schedule import PeriodicJob
from sensors.settings import WorkerSettings

logger = logging.getLogger(__name__)


def maintenance_jobs(
    client: aioredis.Redis, settings: WorkerSettings, *, checks: CheckRunner | None = None
) -> list[PeriodicJob]:
    """The periodic jobs of a worker with ``settings`` (and its time-based checks)."""

    detector = CrashDetector(
        client,
        settings.keys,
        consumer=settings.consumer_name,
        heartbeat_timeout_s=settings.heartbeat_timeout_s,
    )

    async def detect_crashes() -> None:
        await detector.run_once()

    async def retention() -> None:
        await trim_streams(client, settings)

    jobs = [
        PeriodicJob("crash-detection", detect_crashes, settings.crash_check_interval_s),
        PeriodicJob("retention", retention, settings.retention_interval_s),
    ]
    if checks is not None and checks.checks:
        jobs.append(PeriodicJob("time-checks", checks.run_once, settings.check_interval_s))
    return jobs


async def trim_streams(client: aioredis.Redis, settings: WorkerSettings) -> int:
    """Trim every shard's event and dead-letter streams; return how many entries went."""
    now_ms = int(time.time() * 1000)
    removed = 0
    for shard in range(settings.stream_shards):
        result = await trim_events(
            client,
            settings.keys.events_stream(shard),
            max_age_s=settings.stream_max_age_s,
            max_len=settings.stream_max_len,
            now_ms=now_ms,
        )
        removed += result.removed
        if result.held_by and not result.forced:
            logger.info(
                "retention stream=%s kept old entries for groups=%s (not yet handled)",
                result.stream,
                ",".join(result.held_by),
            )
        removed += await trim_by_age(
            client,
            settings.keys.dead_letter_stream(shard),
            max_age_s=settings.dead_letter_max_age_s,
            now_ms=now_ms,
        )
    if removed:
        logger.info("retention trimmed entries=%d", removed)
    return removed
