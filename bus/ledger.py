"""The idempotency record per (event, handler) that makes redelivery harmless.

At-least-once delivery means a handler may see an event twice (a worker died before its
ack). Before running a handler the worker checks this record; after the handler succeeds
it writes it. The one remaining window: a worker that dies after the handler's side effect
and before ``record`` — then the handler runs again on redelivery.

Records are kept per hour (``SLOT_S``) of the Redis server's clock: the hour's hash holds
a field per (event, handler) written in it, and goes once its last record has been kept
``ttl_s``. A check looks in the hours its record can be in: from a time the caller knows
it cannot be older than (less ``CLOCK_SLACK_S``) to now, or every hour still kept.

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
from typing import Any, Final, NamedTuple, TypeVar

import redis
import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from bus.keys import Keys

T = TypeVar("T")

#: Records are kept per time slot of this many seconds, on the Redis server's clock: one
#: hash per slot (``Keys.handled_in``), a field per (event, handler). Writing a field costs
#: Redis under half of what a key with its own TTL cost (8.6k instructions against 17.3k,
#: counted with callgrind on redis-server), since one ``HSET`` takes a whole batch and
#: nothing goes into the expiry table. Part of every key: changing it loses the records.
SLOT_S: Final = 3600
#: How far before its ``occurred_at`` (the engine host's clock) an event's record may have
#: been written (the Redis server's clock): hosts' clocks may disagree by this much.
CLOCK_SLACK_S: Final = 3600

#: ARGV: the slot keys' prefix, this worker's TTL, the key keeping the longest TTL any
#: worker uses, the checks, then (value, fields) pairs: the fields to write with that
#: value. Each list is one argument joined by NUL (redis-py packs each argument in Python:
#: thousands of them cost more than the work), split with a plain ``string.find`` (a
#: ``gmatch`` pattern costs more, measured). A check is three items: the field, the first
#: slot to look in ("": the oldest kept) and its key as written before slots
#: (``Keys.handled``). Returns 0/1 per check, after the writes.
#:
#: Slots are on the server's clock (``TIME``), so workers' clocks do not matter. The
#: slot's TTL is only ever raised: workers with a longer TTL keep it longer, and checks look
#: back as far as the longest TTL any worker wrote with. A write also unlinks the slot
#: whose TTL is about to run out, so that Redis frees it in its background thread: an
#: expiring hash of millions of fields is freed inline, stalling every client. (``TTL``
#: and ``EXPIRE`` rather than ``EXPIRE … GT``, which needs Redis 7: the embedded Redis of
#: ``pip install hookbus[embedded]`` is 6.2.) The keys are not declared: on a single
#: Redis that is allowed; a Redis Cluster gets a pipeline instead (``Ledger._round_trip``).
_WRITE_THEN_CHECK = (
    """
local function split(joined)
  local items, start = {}, 1
  while start <= #joined do
    local stop = string.find(joined, '\\0', start, true) or (#joined + 1)
    items[#items + 1] = string.sub(joined, start, stop - 1)
    start = stop + 1
  end
  return items
end
local function slot_key(slot) return ARGV[1] .. string.format('%d', slot) end
local slot_s, now = """
    + str(SLOT_S)
    + """, tonumber(redis.call('TIME')[1])
local ttl, kept = tonumber(ARGV[2]), tonumber(redis.call('GET', ARGV[3]) or 0)
if #ARGV >= 5 then
  local slot = math.floor(now / slot_s)
  local key = slot_key(slot)
  for group = 5, #ARGV, 2 do
    local value, fields = ARGV[group], split(ARGV[group + 1])
    for first = 1, #fields, 2000 do  -- unpack is bounded by Lua's C stack (8000)
      local args = {}
      for i = first, math.min(first + 1999, #fields) do
        args[#args + 1] = fields[i]
        args[#args + 1] = value
      end
      redis.call('HSET', key, unpack(args))
    end
  end
  -- The slot's last record is kept ttl: to one slot past its end, and one more.
  local keep = (slot + 2) * slot_s + ttl - now
  if redis.call('TTL', key) < keep then redis.call('EXPIRE', key, keep) end
  -- Renewed only by the workers with the longest TTL: once they are gone, it lapses.
  if kept <= ttl then
    kept = ttl
    redis.call('SET', ARGV[3], ttl, 'EX', ttl + 2 * slot_s)
  end
  -- The slots whose TTL (per this worker's) runs out within the next slot.
  local ending = math.floor((now - ttl) / slot_s) - 1
  for old = ending - 1, ending do
    local left = redis.call('PTTL', slot_key(old))
    if left >= 0 and left <= slot_s * 1000 then redis.call('UNLINK', slot_key(old)) end
  end
end
if kept < ttl then kept = ttl end
local oldest, last = math.floor((now - kept) / slot_s) - 2, math.floor(now / slot_s) + 1
local checks, found = split(ARGV[4]), {}
for i = 1, #checks, 3 do
  local field, slot = checks[i], tonumber(checks[i + 1]) or oldest
  local hit = redis.call('EXISTS', checks[i + 2])
  slot = math.max(slot, oldest)
  while hit == 0 and slot <= last do
    hit = redis.call('HEXISTS', slot_key(slot), field)
    slot = slot + 1
  end
  found[#found + 1] = hit
end
return found
"""
)


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
        #: Checks and writes (fields, value) waiting for this turn's round trip, each with
        #: the future its caller awaits.
        self._checks: list[tuple[list[_Check], asyncio.Future[list[int]]]] = []
        self._writes: list[tuple[list[str], str, asyncio.Future[None]]] = []
        self.round_trips = 0
        self._sender: asyncio.Task[None] | None = None
        #: Whether a round trip is under way (one at a time, in order).
        self._in_flight = False
        self._script = client.register_script(_WRITE_THEN_CHECK)

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
                _field(event_id, handler),
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
        value = LedgerRecord(
            consumer=consumer, started_at=started_at, finished_at=finished_at
        ).model_dump_json()
        # Always through the sender task, never from the caller's own: a caller cancelled
        # (the worker stopping) must not cut off the record of a hook that ran.
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writes.append(([_field(*pair) for pair in pairs], value, future))
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
        writes: list[tuple[list[str], str, asyncio.Future[None]]],
    ) -> None:
        """One round trip: the writes first (a check queued with them then sees them)."""
        written = [(value, fields) for fields, value, _ in writes]
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
            _joined(
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
            args += [value, _joined(fields)]
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
    for slot in range(first, slot_of(time.time() + CLOCK_SLACK_S) + 1):
        pipe.hget(keys.handled_in(slot), _field(event_id, handler))
    pipe.get(keys.handled(event_id, handler))
    raw = next((reply for reply in pipe.execute() if reply is not None), None)
    return None if raw is None else LedgerRecord.parse(raw)


def slot_of(at: float) -> int:
    """The slot a record written at ``at`` (seconds since the epoch) goes to."""
    return int(at // SLOT_S)


def _field(event_id: str, handler: str) -> str:
    return f"{event_id}:{handler}"


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


def _joined(items: list[str]) -> str:
    """``items`` joined by NUL, as the script splits them.

    Raises:
        ValueError: an item holds a NUL byte (it would be split in two).
    """
    joined = "\0".join(items)
    if joined.count("\0") != max(len(items) - 1, 0):  # one C pass, not a test per item
        raise ValueError(
            "a ledger record holds a NUL byte; event ids and handler (hook, sensor, check) "
            "names must not: rename it"
        )
    return joined
