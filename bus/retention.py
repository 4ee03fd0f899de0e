"""Trimming event and dead-letter streams without losing what a consumer still needs.

An event stream is trimmed by age (``XTRIM MINID``), but never past the oldest entry any
consumer group still needs: its oldest pending entry, or, if none is pending, the last
entry delivered to it (everything after that has not been read yet). A hard cap on length
can force the trim further; then the entries some group had not acknowledged are lost, and
this says so loudly, naming the groups.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis.asyncio as aioredis

from bus.utils import entry_order, text

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrimResult:
    """What one trim did.

    Attributes:
        stream: the stream trimmed.
        removed: entries removed.
        forced: entries the hard cap removed although some group still needed them.
        held_by: groups that kept entries older than the age limit.
    """

    stream: str
    removed: int
    forced: int = 0
    held_by: tuple[str, ...] = ()


async def oldest_needed(client: aioredis.Redis, stream: str) -> dict[str, str]:
    """For each consumer group of ``stream``, the oldest entry id it still needs."""
    needed: dict[str, str] = {}
    for group in await client.xinfo_groups(stream):
        name = text(group["name"])
        oldest_pending = None
        if int(group["pending"]):
            oldest_pending = (await client.xpending(stream, name))["min"]
        needed[name] = needed_from(group["last-delivered-id"], oldest_pending)
    return needed


def needed_from(last_delivered: object, oldest_pending: object) -> str:
    """The oldest entry a group needs: its oldest pending entry, else the last delivered.

    The two come from two commands, and a worker may ack everything in between: then
    ``XPENDING`` has no oldest entry (``None``) and the last delivered id, read first and
    so never newer than what is delivered now, is the safe position.
    """
    return text(last_delivered if oldest_pending is None else oldest_pending)


async def trim_events(
    client: aioredis.Redis, stream: str, *, max_age_s: float, max_len: int, now_ms: int
) -> TrimResult:
    """Trim ``stream`` to ``max_age_s`` without passing any group, then to ``max_len``."""
    needed = await oldest_needed(client, stream)
    cutoff = (now_ms - int(max_age_s * 1000), 0)
    safe = min([cutoff, *(entry_order(entry_id) for entry_id in needed.values())])
    removed = int(await client.xtrim(stream, minid=f"{safe[0]}-{safe[1]}", approximate=False))
    # Only a group whose position is older than the cutoff AND behind an entry that is
    # still there keeps anything: a new group at 0-0 on an empty stream keeps nothing.
    oldest_left = await client.xrange(stream, count=1)
    first = entry_order(oldest_left[0][0]) if oldest_left else cutoff
    held_by = tuple(
        sorted(
            name
            for name, entry_id in needed.items()
            if first < cutoff and entry_order(entry_id) < cutoff
        )
    )
    if await client.xlen(stream) <= max_len:
        return TrimResult(stream=stream, removed=removed, held_by=held_by)
    return await _enforce_cap(client, stream, max_len, needed, removed)


async def _enforce_cap(
    client: aioredis.Redis, stream: str, max_len: int, needed: dict[str, str], removed: int
) -> TrimResult:
    newest = await client.xrevrange(stream, count=max_len) or []
    first_kept = entry_order(text(newest[-1][0]))
    behind = sorted(name for name, entry_id in needed.items() if entry_order(entry_id) < first_kept)
    capped = int(await client.xtrim(stream, maxlen=max_len, approximate=False))
    if behind:
        logger.error(
            "stream %s over its hard cap max_len=%d: trimmed %d entries that groups %s had not "
            "handled; those events are lost to them. Add workers, fix the stopped or slow "
            "sensors, or raise HOOKBUS_STREAM_MAX_LEN",
            stream,
            max_len,
            capped,
            ",".join(behind),
        )
    return TrimResult(
        stream=stream,
        removed=removed + capped,
        forced=capped if behind else 0,
        held_by=tuple(behind),
    )


async def trim_by_age(client: aioredis.Redis, stream: str, *, max_age_s: float, now_ms: int) -> int:
    """Remove entries older than ``max_age_s`` from a stream nobody consumes (dead letters)."""
    return int(
        await client.xtrim(stream, minid=f"{now_ms - int(max_age_s * 1000)}-0", approximate=False)
    )
