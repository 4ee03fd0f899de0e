"""Noise control state in Redis: dedupe windows, burst groups, rate limits, what was held back.

Every decision is one or two atomic Redis commands, so any number of workers can share a
rule and still agree (one of them leads a burst, one of them sends a duplicate):

- **Dedupe** (``first_in_window``): ``SET NX EX`` on a fingerprint of (rule, destination,
  job, op, error signature). The value is the event that won, so a retry of that same
  event is still let through.
- **Grouping** (``join_group`` / ``drain_group``): the first failure of a run (or job)
  opens a window (``SET NX PX``) and is sent at once; failures arriving while it is open
  are collected in a hash; when the window closes the leader drains the hash (a Lua script
  reads and deletes it in one step) and sends them as one message.
- **Rate limit** (``allow``): a per-destination counter per clock minute.
- **Suppressed** (``record_suppressed``): one stream entry per alert held back, with why.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from typing import Final, Literal

import redis.asyncio as aioredis

from bus.events import (
    BusEvent,
    CheckEvent,
    OpEvent,
    RunEvent,
    decode_event,
    encode_event,
    event_state,
)
from bus.keys import Keys

logger = logging.getLogger(__name__)

#: Why an alert was held back (the ``reason`` of a suppressed-alerts entry).
SuppressionReason = Literal["silenced", "duplicate", "grouped", "rate_limited"]
#: Entries kept in the suppressed-alerts stream (approximately).
SUPPRESSED_MAX_LEN: Final = 10_000
#: Numbers, hex ids and quoted values vary between otherwise identical errors.
_VOLATILE: Final = re.compile(r"0x[0-9a-f]+|[0-9a-f]{8,}|\d+|'[^']*'|\"[^\"]*\"", re.IGNORECASE)

# KEYS[1] = the burst's open marker, KEYS[2] = its pending hash.
# ARGV[1] = event id, ARGV[2] = event JSON, ARGV[3] = window ms, ARGV[4] = pending TTL s,
# ARGV[5] = "1" to collect the event when another leads, "0" only to learn who leads.
# Returns 1 when this event leads the burst (send now), 0 when another event leads it.
_JOIN_GROUP: Final = """
local leader = redis.call('GET', KEYS[1])
if leader == ARGV[1] then return 1 end
if not leader then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return 1
end
if ARGV[5] ~= '1' then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 0
"""
# KEYS[1] = a pending hash. Returns its values and deletes it, atomically.
_DRAIN_GROUP: Final = """
local values = redis.call('HVALS', KEYS[1])
redis.call('DEL', KEYS[1])
return values
"""


def fingerprint(event: RunEvent | OpEvent) -> str:
    """A short, stable id of "the same failure": job, op, error type and message shape.

    Numbers, hex ids and quoted values are masked, so ``row 41`` and ``row 42`` match.
    """
    op = event.op.step_key if isinstance(event, OpEvent) else "-"
    error = event.error
    shape = "" if error is None else f"{error.type}:{_VOLATILE.sub('#', error.message)}"
    digest = hashlib.sha256(f"{event.job_name}\0{op}\0{event.to_state}\0{shape}".encode())
    return digest.hexdigest()[:20]


class NoiseControl:
    """The Redis side of noise control for every rule in a worker.

    Args:
        client: an asyncio Redis client.
        keys: key names.
    """

    def __init__(self, client: aioredis.Redis, *, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    def __repr__(self) -> str:
        return f"<NoiseControl prefix={self._keys.prefix!r}>"

    async def first_in_window(
        self, rule: str, destination: str, event: RunEvent | OpEvent, *, window_s: float
    ) -> bool:
        """Whether ``event`` is the first of its fingerprint within ``window_s`` (or its retry)."""
        if window_s <= 0:
            return True
        key = self._keys.alert_dedupe(rule, destination, fingerprint(event))
        won = await self._client.set(key, event.event_id, nx=True, px=int(window_s * 1000))
        if won:
            return True
        holder = await self._client.get(key)
        return holder in (event.event_id, event.event_id.encode())

    async def join_group(
        self,
        rule: str,
        destination: str,
        group_id: str,
        event: RunEvent | OpEvent,
        *,
        window_s: float,
        collect: bool = True,
    ) -> bool:
        """Join the open burst of ``group_id``; return whether ``event`` leads it.

        Args:
            collect: when another event leads, keep ``event`` for the leader's grouped
                message (``False``: a run's end, which is not one more failure, only
                learns that a burst is open).
        """
        if window_s <= 0:
            return True
        keys = self._group_keys(rule, destination, group_id)
        leads = await self._client.eval(
            _JOIN_GROUP,
            2,
            *keys,
            event.event_id,
            encode_event(event),
            int(window_s * 1000),
            int(window_s * 10) + 60,
            "1" if collect else "0",
        )
        return bool(leads)

    async def drain_group(
        self, rule: str, destination: str, group_id: str
    ) -> list[RunEvent | OpEvent]:
        """Take the burst's collected events (in run order); they are gone from Redis after."""
        pending = self._group_keys(rule, destination, group_id)[1]
        raw: list[bytes] = await self._client.eval(_DRAIN_GROUP, 1, pending)
        # Only run and op events join bursts (check events are never grouped).
        events = [event for event in map(decode_event, raw) if not isinstance(event, CheckEvent)]
        return sorted(events, key=lambda event: (event.run_id, event.seq))

    async def group_open_ms(self, rule: str, destination: str, group_id: str) -> int:
        """How many milliseconds the burst's window stays open (0: no burst is open)."""
        ttl: int = await self._client.pttl(self._group_keys(rule, destination, group_id)[0])
        return max(0, ttl)

    def _group_keys(self, rule: str, destination: str, group_id: str) -> tuple[str, str]:
        return (
            self._keys.alert_group(rule, destination, group_id),
            self._keys.alert_group_pending(rule, destination, group_id),
        )

    async def allow(self, destination: str, *, per_minute: int | None) -> bool:
        """Count one message to ``destination``; whether it is within its rate limit."""
        if per_minute is None:
            return True
        key = self._keys.alert_rate(destination, int(time.time() // 60))
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 120)
            count, _ = await pipe.execute()
        return int(count) <= per_minute

    async def record_suppressed(
        self,
        reason: SuppressionReason,
        *,
        rule: str,
        destination: str,
        event: BusEvent,
        detail: str = "",
    ) -> None:
        """Note that an alert was held back, and why (``hookbus`` operators can read it)."""
        fields = {
            "reason": reason,
            "rule": rule,
            "destination": destination,
            "event_id": event.event_id,
            "run_id": event.run_id or "",
            "job": event.job_name,
            "op": event.op.step_key if isinstance(event, OpEvent) else "",
            "state": event_state(event),
            "detail": detail,
        }
        await self._client.xadd(
            self._keys.suppressed_alerts(),
            fields,  # type: ignore[arg-type]
            maxlen=SUPPRESSED_MAX_LEN,
            approximate=True,
        )
        logger.info(
            "alert suppressed reason=%s rule=%s destination=%s event_id=%s run_id=%s %s",
            reason,
            rule,
            destination,
            event.event_id,
            event.run_id,
            detail,
        )
