"""Periodic work inside workers: APScheduler jobs, each run by one worker at a time.

Every worker schedules the same jobs (crash detection, stream retention, time-based
checks). Before each run a worker takes or renews the job's Redis lease
(``bus.lease.Lease``); only the holder runs it. The holder renews on every run, so it keeps
the job while it lives; if it dies, the lease lapses after a few intervals and another
worker's next tick takes the job over.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
import redis.asyncio as aioredis
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bus.keys import Keys
from bus.lease import Lease

logger = logging.getLogger(__name__)

#: A lease lasts this many of its job's intervals without renewal (at least one second).
LEASE_INTERVALS = 3


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    """One periodic job.

    Attributes:
        name: unique among the jobs; names its lease.
        run: the coroutine function to call on each run.
        interval_s: seconds between two runs.
    """

    name: str
    run: Callable[[], Awaitable[object]]
    interval_s: float


class Periodic:
    """The scheduler of one worker and the leases of its jobs.

    Args:
        client: an asyncio Redis client (for the leases).
        keys: key names.
        owner: this worker's name, unique per process (the lease's value).
        jobs: what to run.
    """

    def __init__(
        self, client: aioredis.Redis, *, keys: Keys, owner: str, jobs: list[PeriodicJob]
    ) -> None:
        self.owner = owner
        self.jobs = jobs
        self._leases = {
            job.name: Lease(
                client,
                key=keys.lease(job.name),
                owner=owner,
                ttl_ms=int(max(job.interval_s * LEASE_INTERVALS, 1.0) * 1000),
            )
            for job in jobs
        }
        self._scheduler: AsyncIOScheduler | None = None
        #: How many times this worker ran each job (it held the lease).
        self.runs: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"<Periodic owner={self.owner!r} jobs={[job.name for job in self.jobs]}>"

    def start(self) -> None:
        """Schedule every job on the running event loop; the first runs start at once."""
        scheduler = AsyncIOScheduler(
            event_loop=asyncio.get_running_loop(),
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )
        for job in self.jobs:
            scheduler.add_job(
                self.tick,
                IntervalTrigger(seconds=job.interval_s, timezone=UTC),
                args=[job],
                id=job.name,
                next_run_time=datetime.now(UTC),
            )
        scheduler.start()
        self._scheduler = scheduler

    async def stop(self) -> None:
        """Stop scheduling and give back the leases held, so another worker takes over now."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        for name, lease in self._leases.items():
            try:
                await lease.release()
            except redis.RedisError as exc:
                logger.warning(
                    "lease %s not released (%s); it lapses by itself", name, type(exc).__name__
                )

    async def tick(self, job: PeriodicJob) -> bool:
        """Run ``job`` if this worker holds (or can take) its lease; whether it ran."""
        try:
            if not await self._leases[job.name].acquire():
                return False
            await job.run()
        except redis.RedisError as exc:
            logger.warning(
                "periodic job %s skipped: redis unavailable (%s); next run in %.1fs",
                job.name,
                type(exc).__name__,
                job.interval_s,
            )
            return False
        self.runs[job.name] += 1
        return True
