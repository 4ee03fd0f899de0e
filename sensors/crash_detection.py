"""Publishing the crash of runs whose machine (or container) is gone.

A running job pushes its liveness deadline every ``heartbeat_interval_s`` (``bus.runs``).
When a deadline has passed, nobody is left to say what happened: a worker claims the run
(``CLAIM_SCRIPT``: only one claimer wins, the supervising ``hookbus run`` included) and
publishes op ``crashed`` for the ops that were running and run ``crashed``, continuing
the run's ``seq`` and carrying its ``on_crashed`` hooks. Call ``publish_lost_runs``
periodically from one worker at a time (the claim makes a second caller harmless).

Deadlines are written and compared on the Redis server's clock (``bus.runs``), so the
engine's and the worker's clocks may disagree. After Redis was unreachable (restarted,
partitioned) every deadline may have passed while the runs kept going: the engines need
up to one heartbeat to refresh them. So ``CrashDetector`` claims nothing until this worker
has been talking to Redis without a break for ``heartbeat_timeout_s``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis
import redis.asyncio as aioredis

from bus.events import CrashInfo
from bus.keys import Keys
from bus.runs import (
    CLAIM_NUMKEYS,
    CLAIM_SCRIPT,
    EXPIRED_SCRIPT,
    claim_args,
    crash_events,
    parse_claim,
    queue_events,
)

logger = logging.getLogger(__name__)

#: Runs claimed per shard per call, so one call stays short after a big outage.
MAX_CLAIMS_PER_SHARD = 100


async def publish_lost_runs(
    client: aioredis.Redis, keys: Keys, *, consumer: str, now: float | None = None
) -> list[str]:
    """Claim every run whose liveness deadline has passed and publish its crash.

    Args:
        client: an asyncio Redis client.
        keys: key names (prefix, shards).
        consumer: this worker's name (recorded as ``crash.detected_by``).
        now: the cutoff in epoch seconds (default: the Redis server's clock, which also
            wrote the deadlines).

    Returns:
        The ids of the runs whose crash this call published.
    """
    cutoff = "" if now is None else repr(now)
    published: list[str] = []
    for alive in keys.all_runs_alive():
        expired = await client.eval(EXPIRED_SCRIPT, 1, alive, str(MAX_CLAIMS_PER_SHARD), cutoff)
        for raw_id in expired:
            run_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            if await _claim_and_publish(client, keys, run_id, consumer):
                published.append(run_id)
    return published


async def _claim_and_publish(
    client: aioredis.Redis, keys: Keys, run_id: str, consumer: str
) -> bool:
    reply = await client.eval(CLAIM_SCRIPT, CLAIM_NUMKEYS, *claim_args(keys, run_id))
    claimed, record = parse_claim(reply)
    if not claimed:
        return False
    if record is None:
        logger.warning("lost run_id=%s had no run record; nothing to publish", run_id)
        return False
    crash = CrashInfo(
        reason="heartbeat_lost", pid=record.pid, host=record.host, detected_by=f"worker:{consumer}"
    )
    events = crash_events(record, crash)
    pipe = client.pipeline(transaction=True)
    queue_events(pipe, keys, events)
    await pipe.execute()
    logger.error("lost run published as crashed run_id=%s job=%s", run_id, record.run.job_name)
    return True


class CrashDetector:
    """``publish_lost_runs`` once this worker's link to Redis has been steady long enough.

    Call ``run_once`` every ``crash_check_interval_s``. A gap between two successful calls
    longer than half the heartbeat timeout (Redis away, this worker cut off, the lease
    just taken over, the worker just started) restarts the wait: the engines may not have
    been able to heartbeat meanwhile, and need up to ``heartbeat_timeout_s`` to do so.

    Args:
        client: an asyncio Redis client.
        keys: key names.
        consumer: this worker's name.
        heartbeat_timeout_s: the engines' heartbeat timeout (``HOOKBUS_HEARTBEAT_TIMEOUT_S``).
        clock: a monotonic clock (tests pass their own).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        *,
        consumer: str,
        heartbeat_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._keys = keys
        self._consumer = consumer
        self._grace_s = heartbeat_timeout_s
        self._clock = clock
        self._steady_since: float | None = None
        self._last_ok: float | None = None
        self._linked_before = False

    def __repr__(self) -> str:
        return f"<CrashDetector consumer={self._consumer!r} steady_since={self._steady_since}>"

    async def run_once(self) -> list[str]:
        """Publish the lost runs' crashes, or nothing while the link is not yet steady."""
        try:
            await self._client.ping()
        except redis.RedisError:
            self._steady_since = None
            raise
        now = self._clock()
        if (
            self._steady_since is None
            or self._last_ok is None
            or now - self._last_ok > self._grace_s / 2
        ):
            # Normal at every start; after a lost link it is worth an INFO line.
            logger.log(
                logging.INFO if self._linked_before else logging.DEBUG,
                "crash detection starts in %.1fs, once the engines have had time to "
                "heartbeat (link to Redis %s)",
                self._grace_s,
                "re-established" if self._linked_before else "up",
            )
            self._linked_before = True
            self._steady_since = now
        self._last_ok = now
        if now - self._steady_since < self._grace_s:
            return []
        try:
            return await publish_lost_runs(self._client, self._keys, consumer=self._consumer)
        except redis.RedisError:
            self._steady_since = None
            self._last_ok = None
            raise
