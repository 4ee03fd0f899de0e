"""The idempotency record per (event, handler) that makes redelivery harmless.

At-least-once delivery means a handler may see an event twice (a worker died before its
ack). Before running a handler the worker checks this record; after the handler succeeds
it writes it. The one remaining window: a worker that dies after the handler's side effect
and before ``record`` — then the handler runs again on redelivery.

Checks and records go out in as few round trips as can be without waiting, one round
trip at a time: a check asked while none is under way (a lone failure's, on its alert's
critical path) goes out at once from its caller's task; everything asked meanwhile, and
every record, goes from a sender task, sharing the next round trip (``done`` and
``record`` still return only once their own answer is in).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from bus.keys import Keys

T = TypeVar("T")

#: ARGV: the TTL, the keys to check, then (value, keys to write) pairs; each list of keys is
#: one argument, the keys joined by NUL (redis-py packs each argument in Python: thousands
#: of them cost more than the work). Split with a plain ``string.find``: a ``gmatch``
#: pattern and a prefix joined to each key in Lua cost Redis 2 µs more per key (measured).
#: ``SETEX`` with the TTL as a string costs Redis 12 % fewer instructions per key than
#: ``SET … EX`` with a Lua number (17.2k against 19.6k, counted with callgrind).
#: Usually none of the checked keys exists: one ``EXISTS`` of them all says so, and only
#: when it counts some is each asked on its own. Returns 0/1 per checked key, after the
#: writes. The keys are not declared: on a single
#: Redis that is allowed; a Redis Cluster gets a pipeline instead (``Ledger._round_trip``).
_SET_THEN_EXISTS = """
local function each(joined, fn)
  local start = 1
  while start <= #joined do
    local stop = string.find(joined, '\\0', start, true) or (#joined + 1)
    fn(string.sub(joined, start, stop - 1))
    start = stop + 1
  end
end
local ttl = ARGV[1]  -- a string: a Lua number is formatted again for every call
for group = 3, #ARGV, 2 do
  local value = ARGV[group]
  each(ARGV[group + 1], function(key) redis.call('SETEX', key, ttl, value) end)
end
local checked = {}
each(ARGV[2], function(key) checked[#checked + 1] = key end)
local any = 0
for first = 1, #checked, 4000 do  -- unpack is bounded by Lua's C stack (8000)
  any = any + redis.call('EXISTS', unpack(checked, first, math.min(first + 3999, #checked)))
end
local found = {}
for i, key in ipairs(checked) do
  found[i] = any > 0 and redis.call('EXISTS', key) or 0
end
return found
"""


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
        #: Checks (``EXISTS`` of each key) and writes (keys, value) waiting for this turn's
        #: round trip, each with the future its caller awaits.
        self._checks: list[tuple[list[str], asyncio.Future[list[int]]]] = []
        self._writes: list[tuple[list[str], str, asyncio.Future[None]]] = []
        self.round_trips = 0
        self._sender: asyncio.Task[None] | None = None
        #: Whether a round trip is under way (one at a time, in order).
        self._in_flight = False
        self._script = client.register_script(_SET_THEN_EXISTS)

    def __repr__(self) -> str:
        return f"<Ledger prefix={self._keys.prefix!r} ttl_s={self._ttl_s}>"

    async def done(self, event_id: str, handlers: list[str]) -> set[str]:
        """Which of ``handlers`` already succeeded for ``event_id``.

        Raises:
            redis.RedisError: the round trip failed.
        """
        found = await self.done_many([(event_id, name) for name in handlers])
        return {handler for handler, exists in zip(handlers, found, strict=True) if exists}

    async def done_many(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        """For each ``(event_id, handler)``, whether the handler already succeeded on it.

        Raises:
            redis.RedisError: the round trip failed.
        """
        if not pairs:
            return []
        keys = [self._keys.handled(*pair) for pair in pairs]
        if self._idle():
            return [bool(exists) for exists in await self._send_alone(keys)]
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._checks.append((keys, future))
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
        self._writes.append(([self._keys.handled(*pair) for pair in pairs], value, future))
        self._send_soon()
        await future

    def _idle(self) -> bool:
        """No round trip under way and nothing waiting for one."""
        return not self._in_flight and not self._checks and not self._writes

    async def _send_alone(self, checked: list[str]) -> list[int]:
        """One caller's check, sent from its own task at once (a lone failure's check is on
        its alert's path: a sender task would start a loop turn later, behind whatever
        else is ready). Only its own check, which writes nothing: cancelling it fails no
        one else's request. What is queued meanwhile goes out next, from the sender task."""
        self._in_flight = True
        try:
            found = await self._round_trip([], checked)
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
        checks: list[tuple[list[str], asyncio.Future[list[int]]]],
        writes: list[tuple[list[str], str, asyncio.Future[None]]],
    ) -> None:
        """One round trip: the writes first (a check queued with them then sees them)."""
        written = [(value, keys) for keys, value, _ in writes]
        checked = [key for keys, _ in checks for key in keys]
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
        for keys, check in checks:
            _answer(check, replies[position : position + len(keys)])
            position += len(keys)

    async def _round_trip(
        self, written: list[tuple[str, list[str]]], checked: list[str]
    ) -> list[int]:
        """SET the written keys (a value and the keys it goes to, per batch of records),
        then EXISTS of each checked key.

        One script call on a single Redis: a pipeline of one command per key costs the
        worker several times more (redis-py packs and parses each). A Redis Cluster cannot
        run a script over keys of different slots, so there it is a pipeline.
        """
        if isinstance(self._client, AsyncRedisCluster):
            async with self._client.pipeline(transaction=False) as pipe:
                for value, keys in written:
                    for key in keys:
                        pipe.set(key, value, ex=self._ttl_s)
                for key in checked:
                    pipe.exists(key)
                replies = await pipe.execute()
            return [int(reply) for reply in replies[-len(checked) :]] if checked else []
        args: list[str | int] = [self._ttl_s, _joined(checked)]
        for value, keys in written:
            args += [value, _joined(keys)]
        found = [int(reply) for reply in await self._script(keys=[], args=args)]
        if len(found) != len(checked):  # a key with a NUL in it would shift every answer
            raise redis.ResponseError(
                f"ledger script answered {len(found)} checks for {len(checked)} keys; "
                "a key holds a NUL byte (event ids and handler names must not)"
            )
        return found

    async def get(self, event_id: str, handler: str) -> LedgerRecord | None:
        """The record of ``handler`` on ``event_id``, or ``None`` if it has not succeeded."""
        raw = await self._client.get(self._keys.handled(event_id, handler))
        return None if raw is None else LedgerRecord.parse(raw)


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


def _joined(keys: list[str]) -> str:
    """``keys`` joined by NUL, as the script splits them.

    Raises:
        ValueError: a key holds a NUL byte (it would be split in two).
    """
    joined = "\0".join(keys)
    if joined.count("\0") != max(len(keys) - 1, 0):  # one C pass, not a test per key
        raise ValueError(
            "a ledger key holds a NUL byte; event ids and handler (hook, sensor, check) "
            "names must not: rename it"
        )
    return joined
