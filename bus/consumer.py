"""Reading events through a Redis consumer group, with explicit acknowledgement.

An entry stays in the group's pending list until ``Consumer.ack``: a worker that dies
before acking leaves it there for another consumer to reclaim.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
import redis.asyncio as aioredis

from bus.publisher import EVENT_FIELD

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One stream entry handed to this consumer.

    Attributes:
        stream: the stream it came from.
        entry_id: its stream id (``"<ms>-<n>"``), which ``ack`` needs.
        payload: the raw JSON event, or ``None`` if the entry has no event field.
    """

    stream: str
    entry_id: str
    payload: bytes | None


class Consumer:
    """One consumer in one group, reading one or more event streams.

    Args:
        client: an asyncio Redis client.
        streams: the event streams (shards) to read.
        group: the consumer group name.
        consumer: this consumer's name, unique per worker process.
        start_id: where a newly created group starts: ``"$"`` (new events only) or
            ``"0"`` (the whole stream).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        streams: list[str],
        group: str,
        consumer: str,
        start_id: str = "$",
    ) -> None:
        self._client = client
        self.streams = streams
        self.group = group
        self.consumer = consumer
        self._start_id = start_id

    def __repr__(self) -> str:
        return f"<Consumer group={self.group!r} consumer={self.consumer!r} streams={self.streams}>"

    async def ensure_group(self) -> None:
        """Create the group on every stream if it does not exist yet (idempotent)."""
        for stream in self.streams:
            try:
                await self._client.xgroup_create(
                    stream, self.group, id=self._start_id, mkstream=True
                )
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def read(self, *, count: int, block_ms: int | None) -> list[Delivery]:
        """New entries for this consumer; waits up to ``block_ms`` (``None``: don't wait)."""
        reply: _XReadReply | None = await self._client.xreadgroup(  # type: ignore[assignment]
            self.group,
            self.consumer,
            dict.fromkeys(self.streams, ">"),
            count=count,
            block=block_ms,
        )
        return [
            Delivery(
                stream=_text(stream),
                entry_id=_text(entry_id),
                payload=fields.get(EVENT_FIELD) if fields else None,
            )
            for stream, entries in reply or []
            for entry_id, fields in entries
        ]

    async def ack(self, delivery: Delivery) -> None:
        """Acknowledge one entry: it leaves the pending list for good."""
        await self._client.xack(delivery.stream, self.group, delivery.entry_id)


# XREADGROUP's reply without decode_responses: [(stream, [(entry_id, {field: value})])].
# A pending entry that was deleted from the stream comes back with no fields.
_XReadReply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes] | None]]]]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
