"""The dead-letter stream: what could not be processed, with why, so nothing is lost.

Two kinds of entries: a poison entry (not a valid event; ``handler`` empty) and a handler
that kept failing (``handler`` names it, ``error`` says how). Each keeps the original
payload so it can be replayed once the cause is fixed.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from bus.events import utc_now
from bus.keys import Keys

logger = logging.getLogger(__name__)


class DeadLetters:
    """Appends to the dead-letter stream of the shard an entry came from."""

    def __init__(self, client: aioredis.Redis, *, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    def __repr__(self) -> str:
        return f"<DeadLetters prefix={self._keys.prefix!r}>"

    async def add(
        self,
        *,
        stream: str,
        entry_id: str,
        payload: bytes | None,
        reason: str,
        error: str = "",
        handler: str = "",
        event_id: str = "",
        attempts: int = 0,
    ) -> None:
        """Record one failure; the source entry may then be acked."""
        fields: dict[str | bytes, str | bytes] = {
            "source_stream": stream,
            "source_id": entry_id,
            "reason": reason,
            "error": error,
            "handler": handler,
            "event_id": event_id,
            "attempts": str(attempts),
            "failed_at": utc_now().isoformat(),
            "payload": payload or b"",
        }
        await self._client.xadd(self._keys.dead_letter_for(stream), fields)  # type: ignore[arg-type]
        logger.warning(
            "dead-lettered entry=%s stream=%s reason=%s handler=%s event_id=%s attempts=%d",
            entry_id,
            stream,
            reason,
            handler or "-",
            event_id or "-",
            attempts,
        )
