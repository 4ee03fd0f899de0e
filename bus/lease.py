"""A Redis lease: at most one holder at a time, lost automatically if the holder dies.

Periodic work that must run on one worker at a time (crash detection, reclaim sweeps,
trimming, the watcher) takes a lease before each run. The lease expires after ``ttl_ms``
unless its holder renews it, so a killed holder blocks the work for at most one TTL.
"""

from __future__ import annotations

from typing import Final

import redis.asyncio as aioredis

# Take the lease if it is free, or renew it if we already hold it; 1 when we hold it after.
_ACQUIRE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return 1
end
return 0
"""
# Give the lease back only if we still hold it (never delete someone else's).
_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class Lease:
    """One named lease held (or wanted) by ``owner``.

    Args:
        client: an asyncio Redis client.
        key: the lease's key (see ``Keys.lease``).
        owner: who is asking, unique per process (e.g. the worker's consumer name).
        ttl_ms: how long the lease lasts without renewal, in milliseconds.
    """

    def __init__(self, client: aioredis.Redis, *, key: str, owner: str, ttl_ms: int) -> None:
        self._key = key
        self.owner = owner
        self._ttl_ms = ttl_ms
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)

    def __repr__(self) -> str:
        return f"<Lease key={self._key!r} owner={self.owner!r} ttl_ms={self._ttl_ms}>"

    async def acquire(self) -> bool:
        """Take or renew the lease; whether we hold it now."""
        return bool(await self._acquire(keys=[self._key], args=[self.owner, self._ttl_ms]))

    async def release(self) -> bool:
        """Give the lease back if we hold it; whether we did."""
        return bool(await self._release(keys=[self._key], args=[self.owner]))
