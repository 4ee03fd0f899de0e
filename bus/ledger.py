"""The idempotency record per (event, handler) that makes redelivery harmless.

At-least-once delivery means a handler may see an event twice (a worker died before its
ack). Before running a handler the worker checks this record; after the handler succeeds
it writes it. The one remaining window: a worker that dies after the handler's side effect
and before ``record`` — then the handler runs again on redelivery.

Records are kept per hour (``SLOT_S``) of the Redis server's clock: the hour's hash holds
a field per (event, handler) written in it, and goes once its last record has been kept
``ttl_s``. A batch's handlers share one ``LedgerRecord``, so that a record costs about
150 bytes of Redis memory instead of 270 in big batches. A check looks in the hours its
record can be in: from a time the caller knows it cannot be older than (less
``CLOCK_SLACK_S``) to now, or every hour still kept.

Checks and records go out in as few round trips as can be without waiting, one round
trip at a time: a check asked while none is under way (a lone failure's, on its alert's
critical path) goes out at once from its caller's task; everything asked meanwhile, and
every record, goes from a sender task, sharing the next round trip (``done`` and
``record`` still return only once their own answer is in).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import redis
import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from bus.keys import Keys
from bus.ledger_slots import (
    CLOCK_SLACK_S,
    SLOT_S,
    WRITE_THEN_CHECK,
    joined,
    record_field,
    shared_record_field,
    slot_of,
)

T = TypeVar("T")


class LedgerRecord(BaseModel):
    """What the ledger keeps about a handler that succeeded: where and when it ran.

    A record of one (event, handler) is the value of its field. Handlers that succeeded
    together in one batch share one record: it is stored once, under a field of its own
    (``@`` and 16 hex digits), and each of their fields holds that field's name.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    consumer: str
    started_at: datetime
    finished_at: datetime

    @classmethod
    def parse(cls, raw: bytes | str) -> LedgerRecord:
        """Read a record as stored in Redis."""
        return cls.model_validate_json(raw)


class _Check(NamedTuple):
    """One (event, handler) to look up: its field, the first slot its record may be in
    (``None``: the oldest kept), and its key as written before slots."""

    field: str
    first_slot: int | None
    legacy_key: str


class Ledger:
    """Records which handlers have succeeded for which events.

    Args:
        client: an asyncio Redis client.
        keys: key names.
        ttl_s: how long a record lives at least, in seconds (up to two slots more);
            must outlast any redelivery.
        clock: the wall clock, in seconds since the epoch, for the slots on a Redis
            Cluster (a single Redis uses its own clock).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        keys: Keys,
        ttl_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._keys = keys
        self._ttl_s = ttl_s
        self._clock = clock
        #: Checks, and writes as (value, fields) groups, waiting for this turn's round
        #: trip, each with the future its caller awaits.
        self._checks: list[tuple[list[_Check], asyncio.Future[list[int]]]] = []
        self._writes: list[tuple[list[tuple[str, list[str]]], asyncio.Future[None]]] = []
        self.round_trips = 0
        self._sender: asyncio.Task[None] | None = None
        #: Whether a round trip is under way (one at a time, in order).
        self._in_flight = False
        self._script = client.register_script(WRITE_THEN_CHECK)

    def __repr__(self) -> str:
        return f"<Ledger prefix={self._keys.prefix!r} ttl_s={self._ttl_s}>"

    async def done(
        self, event_id: str, handlers: list[str], *, since: datetime | None = None
    ) -> set[str]:
        """Which of ``handlers`` already succeeded for ``event_id``.

        ``since``: no record of it can be older than this (less ``CLOCK_SLACK_S``), so
        older slots are not looked in; ``None``: look in every slot still kept.

        Raises:
            redis.RedisError: the round trip failed.
        """
        found = await self.done_many(
            [(event_id, name) for name in handlers], since=[since] * len(handlers)
        )
        return {handler for handler, exists in zip(handlers, found, strict=True) if exists}

    async def done_many(
        self,
        pairs: Sequence[tuple[str, str]],
        *,
        since: Sequence[datetime | None] | None = None,
    ) -> list[bool]:
        """For each ``(event_id, handler)``, whether the handler already succeeded on it.

        ``since``: per pair, as in ``done``; by default, every slot still kept.

        Raises:
            redis.RedisError: the round trip failed.
        """
        if not pairs:
            return []
        checks = [
            _Check(
                record_field(event_id, handler),
                None if not_before is None else slot_of(not_before.timestamp() - CLOCK_SLACK_S),
                self._keys.handled(event_id, handler),
            )
            for (event_id, handler), not_before in zip(
                pairs, since or [None] * len(pairs), strict=True
            )
        ]
        if self._idle():
            return [bool(exists) for exists in await self._send_alone(checks)]
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._checks.append((checks, future))
        self._send_soon()
        return [bool(exists) for exists in await future]

    async def record(
        self,
        event_id: str,
        handler: str,
        *,
        consumer: str,
        started_at: datetime,
        finished_at: datetime,
    ) -> None:
        """Mark ``handler`` as done for ``event_id`` (with when and where it ran).

        Raises:
            redis.RedisError: the round trip failed (the record may not be written).
        """
        await self.record_many(
            [(event_id, handler)],
            consumer=consumer,
            started_at=started_at,
            finished_at=finished_at,
        )

    async def record_many(
        self,
        pairs: Sequence[tuple[str, str]],
        *,
        consumer: str,
        started_at: datetime,
        finished_at: datetime,
    ) -> None:
        """Mark each ``(event_id, handler)`` as done; they ran together, in one batch.

        Raises:
            redis.RedisError: the round trip failed (the records may not be written).
        """
        if not pairs:
            return
        record = LedgerRecord(
            consumer=consumer, started_at=started_at, finished_at=finished_at
        ).model_dump_json()
        fields = [record_field(*pair) for pair in pairs]
        groups = [(record, fields)]
        if len(fields) > 2:  # the record once, under a field of its own; each pair points to it
            shared = shared_record_field()
            groups = [(record, [shared]), (shared, fields)]
        # Always through the sender task, never from the caller's own: a caller cancelled
        # (the worker stopping) must not cut off the record of a hook that ran.
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writes.append((groups, future))
        self._send_soon()
        await future

    def _idle(self) -> bool:
        """No round trip under way and nothing waiting for one."""
        return not self._in_flight and not self._checks and not self._writes

    async def _send_alone(self, checks: list[_Check]) -> list[int]:
        """One caller's check, sent from its own task at once (a lone failure's check is on
        its alert's path: a sender task would start a loop turn later, behind whatever
        else is ready). Only its own check, which writes nothing: cancelling it fails no
        one else's request. What is queued meanwhile goes out next, from the sender task."""
        self._in_flight = True
        try:
            found = await self._round_trip([], checks)
            self.round_trips += 1
            return found
        finally:
            self._in_flight = False
            if self._checks or self._writes:
                self._send_soon()

    def _send_soon(self) -> None:
        # One sender task at a time: it starts now (it runs in the loop's next turn, after
        # every task of this turn has queued its own request) and keeps sending what was
        # queued meanwhile until nothing is left.
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_queued())
            self._sender.add_done_callback(_retrieve)

    async def _send_queued(self) -> None:
        # A lone request sent meanwhile (``_send_alone``) restarts this when it is done.
        while (self._checks or self._writes) and not self._in_flight:
            checks, self._checks = self._checks, []
            writes, self._writes = self._writes, []
            self._in_flight = True
            try:
                with contextlib.suppress(Exception):  # each caller gets it through its future
                    await self._send(checks, writes)
            finally:
                self._in_flight = False

    async def _send(
        self,
        checks: list[tuple[list[_Check], asyncio.Future[list[int]]]],
        writes: list[tuple[list[tuple[str, list[str]]], asyncio.Future[None]]],
    ) -> None:
        """One round trip: the writes first (a check queued with them then sees them)."""
        written = [group for groups, _ in writes for group in groups]
        checked = [check for batch, _ in checks for check in batch]
        try:
            replies = await self._round_trip(written, checked)
        except BaseException as exc:
            _fail([future for *_, future in writes], exc)
            _fail([future for _, future in checks], exc)
            raise
        self.round_trips += 1
        for *_, write in writes:
            _answer(write, None)
        position = 0
        for batch, check in checks:
            _answer(check, replies[position : position + len(batch)])
            position += len(batch)

    async def _round_trip(
        self, written: list[tuple[str, list[str]]], checked: list[_Check]
    ) -> list[int]:
        """Write the fields (a value and the fields it goes to, per batch of records) in
        the current slot, then look up each check.

        One script call on a single Redis: a pipeline of one command per record costs the
        worker several times more (redis-py packs and parses each). A Redis Cluster cannot
        run a script over keys of different slots, so there it is a pipeline.
        """
        if isinstance(self._client, AsyncRedisCluster):
            return await self._pipelined(written, checked)
        args: list[str | int] = [
            self._keys.handled_slots,
            self._ttl_s,
            self._keys.handled_kept_for,
            joined(
                [
                    item
                    for check in checked
                    for item in (
                        check.field,
                        "" if check.first_slot is None else str(check.first_slot),
                        check.legacy_key,
                    )
                ]
            ),
        ]
        for value, fields in written:
            args += [value, joined(fields)]
        found = [int(reply) for reply in await self._script(keys=[], args=args)]
        if len(found) != len(checked):  # a field with a NUL in it would shift every answer
            raise redis.ResponseError(
                f"ledger script answered {len(found)} checks for {len(checked)} records; "
                "a record holds a NUL byte (event ids and handler names must not)"
            )
        return found

    async def _pipelined(
        self, written: list[tuple[str, list[str]]], checked: list[_Check]
    ) -> list[int]:
        """``_round_trip`` on a Redis Cluster, as a pipeline: the slots are on this
        worker's clock, checks look back as far as its own TTL keeps, and a slot's hash is
        freed by its expiry, not unlinked."""
        now = self._clock()
        slot = slot_of(now)
        key = self._keys.handled_in(slot)
        oldest, last = slot_of(now - self._ttl_s) - 2, slot_of(now + CLOCK_SLACK_S)
        async with self._client.pipeline(transaction=False) as pipe:
            for value, fields in written:
                pipe.hset(key, mapping=dict.fromkeys(fields, value))
            if written:  # as in the script: to one slot past its end, and one more
                keep = (slot + 2) * SLOT_S + self._ttl_s - int(now)
                pipe.expire(key, keep, nx=True)
                pipe.expire(key, keep, gt=True)
            lookups = [
                [
                    self._keys.handled_in(n)
                    for n in range(
                        oldest if check.first_slot is None else max(oldest, check.first_slot),
                        last + 1,
                    )
                ]
                for check in checked
            ]
            for check, slots in zip(checked, lookups, strict=True):
                pipe.exists(check.legacy_key)
                for slot_key in slots:
                    pipe.hexists(slot_key, check.field)
            replies = await pipe.execute()
        found: list[int] = []
        position = len(replies) - sum(1 + len(slots) for slots in lookups)
        for slots in lookups:
            found.append(int(any(replies[position : position + 1 + len(slots)])))
            position += 1 + len(slots)
        return found


def find_record(
    client: redis.Redis, keys: Keys, event_id: str, handler: str, *, since: datetime
) -> LedgerRecord | None:
    """The record of ``handler`` on an event that occurred at ``since``, or ``None`` if it
    has not succeeded (the demo and the tests read it with a blocking client)."""
    pipe = client.pipeline(transaction=False)
    first = slot_of(since.timestamp() - CLOCK_SLACK_S)
    places = [
        keys.handled_in(slot) for slot in range(first, slot_of(time.time() + CLOCK_SLACK_S) + 1)
    ]
    for key in places:
        pipe.hget(key, record_field(event_id, handler))
    pipe.get(keys.handled(event_id, handler))
    found = [
        (key, raw)
        for key, raw in zip([*places, ""], pipe.execute(), strict=True)
        if raw is not None
    ]
    if not found:
        return None
    key, raw = found[0]
    if raw.startswith(b"@"):  # a batch's shared record, in the same hour's hash
        raw = client.hget(key, raw)
        if raw is None:  # written in the same script call as its pointers: only by hand
            raise LookupError(f"{key!r} has no shared ledger record {found[0][1]!r}")
    return LedgerRecord.parse(raw)


def _answer(future: asyncio.Future[T], value: T) -> None:
    if not future.done():  # its caller may have been cancelled meanwhile
        future.set_result(value)


def _fail(futures: Sequence[asyncio.Future[Any]], exc: BaseException) -> None:
    for future in futures:
        if future.done():
            continue
        if isinstance(exc, asyncio.CancelledError):
            future.cancel()
        else:
            future.set_exception(exc)


def _retrieve(task: asyncio.Task[None]) -> None:
    # Each caller got the exception through its own future; mark the task's as seen.
    if not task.cancelled():
        task.exception()
