"""Publishing the crash of runs whose machine (or container) is gone.

A running job pushes its liveness deadline every ``heartbeat_interval_s`` (``bus.runs``).
When a deadline has passed, nobody is left to say what happened: a worker claims the run
(``CLAIM_SCRIPT``: only one claimer wins, the supervising ``hookbus run`` included) and
publishes op ``crashed`` for the ops that were running and run ``crashed``, continuing
the run's ``seq`` and carrying its ``on_crashed`` hooks. Call ``publish_lost_runs``
periodically from one worker at a time (the claim makes a second caller harmless).
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis

from bus.events import CrashInfo
from bus.keys import Keys
from bus.runs import (
    CLAIM_NUMKEYS,
    CLAIM_SCRIPT,
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
        now: the current time in epoch seconds (default: ``time.time()``).

    Returns:
        The ids of the runs whose crash this call published.
    """
    cutoff = time.time() if now is None else now
    published: list[str] = []
    for alive in keys.all_runs_alive():
        expired = await client.zrangebyscore(
            alive, "-inf", cutoff, start=0, num=MAX_CLAIMS_PER_SHARD
        )
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
