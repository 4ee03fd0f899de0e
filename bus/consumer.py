"""Reading events through a Redis consumer group, with explicit acknowledgement.

An entry stays in the group's pending list until ``Consumer.ack``: a worker that dies
before acking leaves it there, and another consumer takes it over with ``Consumer.reclaim``
(``XAUTOCLAIM``) once it has been idle long enough. A live worker keeps the entries it is
still working on fresh with ``Consumer.refresh`` (``XCLAIM ... JUSTID``), so a long hook
is never taken away from it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.typing import KeyT, StreamIdT

from bus.errors import EventValidationError
from bus.events import BusEvent, decode_event
from bus.groups import ensure_group_async, missing_group
from bus.keys import read_mark_for
from bus.read_mark import PUBLISH_SCRIPT, as_entry_id, parse_mark
from bus.runs import EVENT_FIELD, FIRST_SEND_FIELD
from bus.utils import entry_order, text

if TYPE_CHECKING:
    from redis.asyncio.client import Pipeline

logger = logging.getLogger(__name__)


# Not frozen, and compared by identity: one is made per entry read, thousands a second, and
# a frozen dataclass's __init__ and field-wise hash (a worker keeps its entries in sets)
# cost several times more. Nothing changes a delivery once it is handed out but its
# ``first_delivery``, cleared when its batch is handled again, and a read never returns
# the same entry twice.
@dataclass(slots=True, eq=False)
class Delivery:
    """One stream entry handed to this consumer.

    Attributes:
        stream: the stream it came from.
        entry_id: its stream id (``"<ms>-<n>"``), which ``ack`` needs.
        payload: the raw JSON event, or ``None`` if the entry has no event field.
        first_delivery: no handler of this group can have seen this entry's event yet: it
            was read with ``>`` (never delivered to the group before), above every entry
            this consumer, or with the group's read mark any consumer, was given before on
            its stream (a group moved back with ``XGROUP SETID`` gives old entries as new),
            and the publisher marked it as its event's only copy
            (``bus.runs.FIRST_SEND_FIELD``). A reclaimed entry never is.
    """

    stream: str
    entry_id: str
    payload: bytes | None
    first_delivery: bool = False

    def event(self) -> BusEvent:
        """The validated event this entry carries.

        Raises:
            EventValidationError: the entry has no event field (``missing_event_field``) or
                its payload is not a valid event (see ``decode_event``).
        """
        if self.payload is None:
            raise EventValidationError(
                "missing_event_field", f"entry {self.entry_id} has no 'event' field"
            )
        return decode_event(self.payload)


class Consumer:
    """One consumer in one group, reading one or more event streams.

    Args:
        client: an asyncio Redis client.
        streams: the event streams (shards) to read.
        group: the consumer group name.
        consumer: this consumer's name, unique per worker process.
        start_id: where a newly created group starts: ``"$"`` (new events only) or
            ``"0"`` (the whole stream).
        read_mark: keep the group's read mark (``bus.read_mark``), so that an entry given
            again after the group was moved back is never a first delivery, whichever
            consumer was given it before (the ``hooks`` group, which trusts them).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        streams: list[str],
        group: str,
        consumer: str,
        start_id: str = "$",
        read_mark: bool = False,
    ) -> None:
        self._client = client
        self.streams = streams
        self.group = group
        self.consumer = consumer
        self._start_id = start_id
        self._reclaim_cursor: dict[str, str] = {}
        #: Per stream, the newest entry a read with ``>`` gave this consumer: a later read
        #: can only give newer ones, unless the group was moved back.
        self._newest: dict[str, tuple[int, int]] = {}
        #: Streams whose group was moved back and is not yet past what was given again.
        self._moved_back: set[str] = set()
        #: Each stream's read mark key, when this consumer keeps the group's mark. Not on a
        #: Redis Cluster: its publishers mark no first sends (``bus.connection.may_resend``),
        #: so there is nothing to guard, and its pipelines cannot load a script.
        keeps_mark = read_mark and not isinstance(client, AsyncRedisCluster)
        self._marks = {s: read_mark_for(s, group) for s in streams} if keeps_mark else {}

    def __repr__(self) -> str:
        return f"<Consumer group={self.group!r} consumer={self.consumer!r} streams={self.streams}>"

    async def ensure_group(self) -> None:
        """Create the group on every stream if it does not exist yet (idempotent), the
        ``hooks`` group first where it is missing (``bus.groups``)."""
        for stream in self.streams:
            await ensure_group_async(self._client, stream, self.group, start_id=self._start_id)

    async def read(
        self,
        *,
        count: int,
        block_ms: int | None,
        acks: Mapping[str, Collection[str]] | None = None,
    ) -> list[Delivery]:
        """New entries for this consumer; waits up to ``block_ms`` (``None``: don't wait).

        With the group's read mark (``read_mark``), the same round trip publishes what
        this consumer was given so far and reads the mark back after the ``XREADGROUP``.

        Args:
            acks: entries to acknowledge first (``{stream: entry ids}``), in the same round
                trip: Redis runs the ``XACK`` at once, before the read blocks.
        """
        streams: dict[KeyT, StreamIdT] = dict.fromkeys(self.streams, ">")
        batches = [(stream, ids) for stream, ids in (acks or {}).items() if ids]
        marks: dict[str, tuple[int, int] | None] = {}
        if not batches and not self._marks:
            reply: _XReadReply | None = await self._client.xreadgroup(  # type: ignore[assignment]
                self.group, self.consumer, streams, count=count, block=block_ms
            )
        else:
            async with self._client.pipeline(transaction=False) as pipe:
                for stream, ids in batches:
                    pipe.xack(stream, self.group, *_encoded(ids))
                self._around_read(pipe, streams, count=count, block_ms=block_ms)
                replies = await pipe.execute()
            reply = replies[-1 - len(self._marks)]
            if self._marks:
                raw_marks = replies[-len(self._marks) :]
                marks = {
                    stream: parse_mark(raw, key=key)
                    for (stream, key), raw in zip(self._marks.items(), raw_marks, strict=True)
                }
        deliveries: list[Delivery] = []
        for raw_stream, entries in reply or []:
            stream = text(raw_stream)
            deliveries += self._new_deliveries(stream, entries, marks.get(stream))
        return deliveries

    async def publish_marks(self) -> None:
        """Publish what this consumer was given to the group's read mark now (a stopping
        worker: its last read is otherwise published only by its next read).

        Raises:
            redis.RedisError: the round trip failed.
        """
        if not self._marks:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            self._publish_marks_on(pipe)
            await pipe.execute()

    def _publish_marks_on(self, pipe: Pipeline) -> None:
        """Queue on ``pipe`` the publishing of what this consumer was given so far."""
        for stream, key in self._marks.items():
            # EVAL, not a registered script: redis-py checks a pipeline's scripts with a
            # SCRIPT EXISTS round trip before every execute, which would delay each read.
            pipe.eval(PUBLISH_SCRIPT, 1, key, as_entry_id(self._newest.get(stream)))

    def _around_read(
        self, pipe: Pipeline, streams: dict[KeyT, StreamIdT], *, count: int, block_ms: int | None
    ) -> None:
        """Queue the ``XREADGROUP`` on ``pipe``, with the read marks' publishing before it
        (what this consumer was given so far) and reading after it (what any consumer
        was), when this consumer keeps them."""
        self._publish_marks_on(pipe)
        pipe.xreadgroup(self.group, self.consumer, streams, count=count, block=block_ms)
        for key in self._marks.values():
            pipe.get(key)

    def _new_deliveries(
        self, stream: str, entries: _Entries, mark: tuple[int, int] | None
    ) -> list[Delivery]:
        """The entries of a ``>`` read, each a first delivery if its publisher marked it so,
        unless the group was moved back over it: at or below the newest entry this
        consumer, or (with a read ``mark``) any consumer, was given before."""
        if not entries:
            return []
        deliveries = [
            Delivery(
                stream,
                text(entry_id),
                fields.get(EVENT_FIELD),
                fields.get(FIRST_SEND_FIELD) == b"1",
            )
            if fields
            else Delivery(stream, text(entry_id), None)
            for entry_id, fields in entries
        ]
        given, last = self._newest.get(stream), entry_order(entries[-1][0])
        self._newest[stream] = last if given is None else max(given, last)
        known = max(given or (0, 0), mark or (0, 0))
        if entry_order(entries[0][0]) > known:
            self._moved_back.discard(stream)
            return deliveries
        if stream not in self._moved_back:  # once per move, not once per batch after it
            self._moved_back.add(stream)
            logger.warning(
                "group moved back group=%s stream=%s given_up_to=%d-%d (XGROUP SETID?); "
                "entries up to there are checked by the ledger",
                self.group,
                stream,
                *known,
            )
        for delivery in deliveries:
            if entry_order(delivery.entry_id) <= known:
                delivery.first_delivery = False
        if last >= known:  # caught up: what comes next is new, and another move is logged
            self._moved_back.discard(stream)
        return deliveries

    async def ack(self, delivery: Delivery) -> None:
        """Acknowledge one entry: it leaves the pending list for good."""
        await self._client.xack(delivery.stream, self.group, delivery.entry_id)

    async def ack_many(self, entries: Mapping[str, Collection[str]]) -> None:
        """Acknowledge many entries (``{stream: entry ids}``) in one round trip."""
        batches = [(stream, ids) for stream, ids in entries.items() if ids]
        if len(batches) == 1:
            # The usual case (one shard): a plain command costs the loop half what a
            # pipeline of one does in redis-py, and acks follow every batch.
            stream, ids = batches[0]
            await self._client.xack(stream, self.group, *_encoded(ids))
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for stream, ids in batches:
                pipe.xack(stream, self.group, *_encoded(ids))
            await pipe.execute()

    async def refresh(self, entries: Mapping[str, Collection[str]]) -> int:
        """Reset the idle time of entries this consumer still works on; return how many.

        ``XCLAIM <min-idle 0> JUSTID`` neither re-reads the entries nor counts a delivery;
        it only tells the group "still mine", so ``reclaim`` elsewhere leaves them alone.
        """
        async with self._client.pipeline(transaction=False) as pipe:
            for stream, ids in entries.items():
                if ids:
                    pipe.xclaim(stream, self.group, self.consumer, 0, list(ids), justid=True)
            replies: list[list[bytes]] = await pipe.execute()
        return sum(len(reply) for reply in replies)

    async def reclaim(self, *, min_idle_ms: int, count: int) -> Reclaimed:
        """Take over entries idle for ``min_idle_ms`` in any consumer (``XAUTOCLAIM``).

        Each stream is scanned from where the previous call stopped, so repeated calls walk
        the whole pending list. Entries that were deleted from the stream meanwhile (trimmed)
        come back in ``Reclaimed.gone``: there is nothing left to run, so ack them.
        """
        deliveries: list[Delivery] = []
        gone: dict[str, list[str]] = {}
        for stream in self.streams:
            reply = await self._client.xautoclaim(
                stream,
                self.group,
                self.consumer,
                min_idle_ms,
                start_id=self._reclaim_cursor.get(stream, "0-0"),
                count=count,
            )
            self._reclaim_cursor[stream] = text(reply[0])
            deliveries.extend(_deliveries(stream, reply[1]))
            gone[stream] = [text(entry_id) for entry_id in (reply[2] if len(reply) > 2 else [])]
        return Reclaimed(deliveries=deliveries, gone=gone)

    async def delivery_counts(self, stream: str, entry_ids: list[str]) -> dict[str, int]:
        """How many times each of this consumer's pending ``entry_ids`` was delivered."""
        if not entry_ids:
            return {}
        wanted = set(entry_ids)
        ordered = sorted(entry_ids, key=entry_order)
        pending = await self._client.xpending_range(
            stream,
            self.group,
            min=ordered[0],
            max=ordered[-1],
            count=len(ordered) * 2 + 16,
            consumername=self.consumer,
        )
        counts = {text(entry["message_id"]): int(entry["times_delivered"]) for entry in pending}
        return {entry_id: count for entry_id, count in counts.items() if entry_id in wanted}

    async def move_to(self, start_id: str) -> None:
        """Set this group's position on every stream (``XGROUP SETID``), creating it if needed.

        Args:
            start_id: ``"$"`` (only new entries from now on), ``"0"`` (the whole stream), or
                a stream id such as ``"<unix ms>-0"`` (entries from that time on).
        """
        for stream in self.streams:
            try:
                await self._client.xgroup_setid(stream, self.group, start_id)
            except redis.ResponseError as exc:
                if not missing_group(exc):
                    raise
                await ensure_group_async(self._client, stream, self.group, start_id=start_id)


@dataclass(frozen=True, slots=True)
class Reclaimed:
    """What ``Consumer.reclaim`` took over: entries to run, and ids no longer in the stream."""

    deliveries: list[Delivery]
    gone: dict[str, list[str]]


def _encoded(entry_ids: Collection[str]) -> list[bytes]:
    """Entry ids as bytes, which redis-py's asyncio client sends as they are: it encodes
    each ``str`` argument in Python (five type checks), and an ack carries hundreds."""
    return [entry_id.encode() for entry_id in entry_ids]


def _deliveries(stream: str, entries: _Entries) -> list[Delivery]:
    """Entries as deliveries, none of them a first delivery (a reclaim's)."""
    return [
        Delivery(stream, text(entry_id), fields.get(EVENT_FIELD) if fields else None)
        for entry_id, fields in entries
    ]


# XREADGROUP's reply without decode_responses: [(stream, [(entry_id, {field: value})])].
# A pending entry that was deleted from the stream comes back with no fields.
_Entries = list[tuple[bytes, dict[bytes, bytes] | None]]
_XReadReply = list[tuple[bytes, _Entries]]
