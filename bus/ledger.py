"""The idempotency record per (event, handler) that makes redelivery harmless.

At-least-once delivery means a handler may see an event twice (a worker died before its
ack). Before running a handler the worker checks this record; after the handler succeeds
it writes it. The one remaining window: a worker that dies after the handler's side effect
and before ``record`` — then the handler runs again on redelivery.
"""

from __future__ import annotations

from datetime import datetime

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict

from bus.keys import Keys


class LedgerRecord(BaseModel):
    """What the ledger keeps about a handler that succeeded: where and when it ran."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    consumer: str
    started_at: datetime
    finished_at: datetime

    @classmethod
    def parse(cls, raw: bytes | str) -> LedgerRecord:
        """Read a record as stored in Redis."""
        return cls.model_validate_json(raw)


class Ledger:
    """Records which handlers have succeeded for which events.

    Args:
        client: an asyncio Redis client.
        keys: key names.
        ttl_s: how long a record lives, in seconds; must outlast any redelivery.
    """

    def __init__(self, client: aioredis.Redis, *, keys: Keys, ttl_s: int) -> None:
        self._client = client
        self._keys = keys
        self._ttl_s = ttl_s

    def __repr__(self) -> str:
        return f"<Ledger prefix={self._keys.prefix!r} ttl_s={self._ttl_s}>"

    async def already_done(self, event_id: str, handler: str) -> bool:
        """Whether ``handler`` already succeeded for ``event_id``."""
        return bool(await self._client.exists(self._keys.handled(event_id, handler)))

    async def done(self, event_id: str, handlers: list[str]) -> set[str]:
        """Which of ``handlers`` already succeeded for ``event_id`` (one round trip)."""
        if not handlers:
            return set()
        async with self._client.pipeline(transaction=False) as pipe:
            for handler in handlers:
                pipe.exists(self._keys.handled(event_id, handler))
            found: list[int] = await pipe.execute()
        return {handler for handler, exists in zip(handlers, found, strict=True) if exists}

    async def record(
        self,
        event_id: str,
        handler: str,
        *,
        consumer: str,
        started_at: datetime,
        finished_at: datetime,
    ) -> None:
        """Mark ``handler`` as done for ``event_id`` (with when and where it ran)."""
        value = LedgerRecord(consumer=consumer, started_at=started_at, finished_at=finished_at)
        await self._client.set(
            self._keys.handled(event_id, handler), value.model_dump_json(), ex=self._ttl_s
        )

    async def get(self, event_id: str, handler: str) -> LedgerRecord | None:
        """The record of ``handler`` on ``event_id``, or ``None`` if it has not succeeded."""
        raw = await self._client.get(self._keys.handled(event_id, handler))
        return None if raw is None else LedgerRecord.parse(raw)
