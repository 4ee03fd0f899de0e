"""The crash contract: what a live run keeps in Redis so that its crash can be published.

While a run is not terminal the engine keeps, next to its events and in the same
atomic script as each XADD (``PUBLISH_SCRIPT``):

- a **run record** (``Keys.run_record``, a hash holding a ``RunRecord``): the run, its last
  ``seq``, its state, the ops running now with their hook refs, and the job's hook refs;
- a **liveness entry** in its shard's ZSET ``Keys.runs_alive``: member run_id, score = the
  deadline (epoch seconds) by which the engine promises to refresh it. The engine's
  heartbeat thread pushes it to now + ``heartbeat_timeout_s`` every
  ``heartbeat_interval_s``; the terminal event removes both.

Every deadline is computed, and compared, on the **Redis server's clock** (``TIME`` inside
``RECORD_SCRIPT``, ``ALIVE_SCRIPT`` and ``EXPIRED_SCRIPT``), never on the engine's or the
worker's, so machines whose clocks disagree never see a live run as expired.

Whoever publishes a crash first **claims** the run with ``ZREM`` (``CLAIM_SCRIPT``: only a
caller that removed the member goes on; it also sets the run's tombstone
``Keys.run_crashed``), then publishes ``crash_events``: op ``crashed`` for each op running,
then run ``crashed``, continuing the record's ``seq`` and carrying the job's
``on_crashed`` hook refs. So a crash is published exactly once whether the supervising
``hookbus run`` parent sees its child die (at once, with the signal) or a worker sees an
expired deadline (``sensors.crash_detection.publish_lost_runs``). The engine's record
writes and heartbeats check the tombstone in the same script: a run declared crashed is
never brought back to life by its engine's late writes, and the engine is told.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

from bus.events import (
    CrashInfo,
    ErrorInfo,
    HookRef,
    OpEvent,
    OpInfo,
    RunEvent,
    RunInfo,
    encode_event,
    utc_now,
)
from bus.keys import HOOKS_GROUP, Keys
from bus.resends import already_added_lua
from bus.states import OpState, RunState

#: The hash field holding the JSON ``RunRecord`` (``seq`` and ``state`` are copied next to
#: it so that ``redis-cli HGETALL`` answers the usual question at a glance).
RECORD_FIELD: Final = "record"
#: How long a claimed run's record is kept after its crash was published, in seconds (for
#: an operator to look at; nothing reads it any more).
RUN_RECORD_GRACE_S: Final = 3600
#: How long a claimed run's tombstone lives, in seconds: longer than any Redis outage an
#: engine rides out with its spool, so its late writes still find it.
RUN_CRASHED_TTL_S: Final = 7 * 24 * 3600
#: The stream field that holds the JSON event (the consumers read this field).
EVENT_FIELD: Final = b"event"
#: Set ("1") on an entry the publisher sent on its event's first attempt, with no failed
#: or unanswered round trip since the event was queued: no other entry of the bus can
#: carry the same event. Resends, spool and dead-letter replays and check events carry
#: none (see "The ledger's check on a fresh delivery" in docs/performance.md).
FIRST_SEND_FIELD: Final = b"first_send"

_WIRE = ConfigDict(frozen=True, extra="forbid")


class RunningOp(BaseModel):
    """An op invocation that is running (or retrying) now, and the hooks on it."""

    model_config = _WIRE

    op: OpInfo
    state: OpState = OpState.RUNNING
    hooks: tuple[HookRef, ...] = ()


class RunRecord(BaseModel):
    """The per-run record of the crash contract (see the module docstring).

    Attributes:
        run: the run, as its events carry it.
        seq: the ``seq`` of the run's last event written with this record.
        state: the run's state after that event.
        state_since: when the run entered ``state`` (its last run event), so a run stuck
            in ``pending`` or ``running`` can be told (``sensors.check_runner``).
        hooks: the job-level hook refs (its ``on_crashed`` hooks among them).
        running: the ops running now, by step key.
        pid: the job's process.
        host: the machine it runs on.
    """

    model_config = _WIRE

    run: RunInfo
    seq: int
    state: RunState
    state_since: datetime | None = None
    hooks: tuple[HookRef, ...] = ()
    running: dict[str, RunningOp] = {}
    pid: int | None = None
    host: str | None = None

    @classmethod
    def from_hash(cls, fields: Mapping[bytes, bytes]) -> RunRecord | None:
        """The record stored in a hash, or ``None`` when the hash is empty."""
        raw = fields.get(RECORD_FIELD.encode())
        return None if raw is None else cls.model_validate_json(raw)

    def to_hash(self) -> dict[str, str]:
        """The hash fields to ``HSET``."""
        return {RECORD_FIELD: self.model_dump_json(), "seq": str(self.seq), "state": self.state}


#: The Redis server's clock in epoch seconds, for the scripts below (``TIME``: seconds and
#: microseconds as strings).
_SERVER_NOW: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

#: The Redis server's clock, for callers outside a script (``server_time``).
SERVER_TIME_SCRIPT: Final = _SERVER_NOW + "return string.format('%.6f', now)"


async def server_time(client: Any) -> datetime:
    """The Redis server's clock now (the clock every deadline here is on), in UTC.

    Args:
        client: an asyncio Redis client (or cluster client: the script has no keys).
    """
    raw = await client.eval(SERVER_TIME_SCRIPT, 0)
    return datetime.fromtimestamp(float(raw), UTC)


#: Events per ``PUBLISH_SCRIPT`` round trip when a backlog or a spool is delivered.
FLUSH_BATCH: Final = 500

#: Publish a batch of events and keep the run's record, in one atomic script (one round
#: trip, one Cluster slot). KEYS: record, liveness ZSET, tombstone, then one stream per
#: event. ARGV: mode (``record``, ``terminal`` or ``none``), run_id, timeout_s, record
#: JSON, seq, state, max_len (empty: no trimming), how the events are sent (``1``: a first
#: send, every entry marked with ``FIRST_SEND_FIELD``; ``resend``: an event already among
#: its stream's newest entries is not added again, ``bus.resends``; empty: neither), then
#: the events' JSON. A stream that does not exist is created with its ``hooks`` group
#: first. Unless the mode is ``none``, a set tombstone (the run's crash was
#: published) makes it write nothing and return 0. ``record`` writes the record and
#: pushes the deadline to the server's now + timeout_s; ``terminal`` deletes both. Returns
#: 1 plus the number of events not added again.
PUBLISH_SCRIPT: Final = (
    """
if ARGV[1] ~= 'none' and redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local xadd = {'', 'NOMKSTREAM'}
if ARGV[7] ~= '' then xadd = {'', 'NOMKSTREAM', 'MAXLEN', '~', ARGV[7]} end
table.insert(xadd, '*')
table.insert(xadd, 'event')
table.insert(xadd, '')
local payload_at = #xadd
if ARGV[8] == '1' then
  table.insert(xadd, 'first_send')
  table.insert(xadd, '1')
end
local present, skipped = false, 0
if ARGV[8] == 'resend' then"""
    + already_added_lua(9, 5)
    + """end
for i = 9, #ARGV do
  if present and present[i] then
    skipped = skipped + 1
  else
    xadd[1], xadd[payload_at] = KEYS[i - 5], ARGV[i]
    if not redis.call('XADD', unpack(xadd)) then
      -- Redis lost the stream (restarted empty): create it with its hooks group first, as
      -- the publisher does, so that this entry is delivered even if its reply is lost (and
      -- a resend that finds it need not add it again).
      redis.call('XGROUP', 'CREATE', KEYS[i - 5], '"""
    + HOOKS_GROUP
    + """', '$', 'MKSTREAM')
      redis.call('XADD', unpack(xadd))
    end
  end
end
if ARGV[1] == 'terminal' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
elseif ARGV[1] == 'record' then
  redis.call('HSET', KEYS[1], 'record', ARGV[4], 'seq', ARGV[5], 'state', ARGV[6])
"""
    + _SERVER_NOW
    + """
  redis.call('ZADD', KEYS[2], string.format('%.3f', now + tonumber(ARGV[3])), ARGV[2])
end
return 1 + skipped
"""
)

#: The heartbeat: push the run's (ARGV[1]) deadline in KEYS[1] to the server's now +
#: ARGV[2] if it is still there (``XX``), and read its cancel request (KEYS[3]). Returns
#: ``{alive, reason}``: alive is -1 if its tombstone (KEYS[2]) is set (declared crashed),
#: 0 if it is not alive (ended, or Redis lost it), 1 if pushed; reason is the cancel
#: request or false.
ALIVE_SCRIPT: Final = (
    """
local reason = redis.call('GET', KEYS[3])
if redis.call('EXISTS', KEYS[2]) == 1 then return {-1, reason} end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {0, reason} end
"""
    + _SERVER_NOW
    + """
redis.call('ZADD', KEYS[1], string.format('%.3f', now + tonumber(ARGV[2])), ARGV[1])
return {1, reason}
"""
)

#: The members of KEYS[1] whose deadline is at or before the server's now (or ARGV[2],
#: when not empty, for tests), at most ARGV[1] of them.
EXPIRED_SCRIPT: Final = (
    _SERVER_NOW
    + """
if ARGV[2] ~= '' then now = tonumber(ARGV[2]) end
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%.3f', now),
                  'LIMIT', 0, tonumber(ARGV[1]))
"""
)


def publish_args(
    keys: Keys | None,
    events: list[tuple[str, bytes]],
    record: RunRecord | None,
    *,
    timeout_s: float,
    max_len: int | None,
    first_send: bool = False,
    resend: bool = False,
) -> tuple[list[str], list[str | bytes]]:
    """``KEYS`` and ``ARGV`` of ``PUBLISH_SCRIPT`` for ``(stream, payload)`` pairs.

    Without a record (a batch in the middle of a backlog, a spool) the first three keys
    only repeat the first stream (same slot; unused), and ``keys`` may be ``None``.

    Args:
        first_send: mark every entry as its event's only copy (``FIRST_SEND_FIELD``).
        resend: some of the events may be in their streams already (a round trip that
            went unanswered): those are not added again (``bus.resends``).
    """
    if first_send and resend:
        raise ValueError("a batch is a first send or a resend, not both")
    streams = [stream for stream, _ in events]
    if record is None:
        head = [streams[0]] * 3
        args: list[str | bytes] = ["none", "", "0", "", "0", ""]
    elif keys is None:
        raise ValueError("writing a run record needs the Keys to name it")
    else:
        run_id = record.run.run_id
        head = [keys.run_record(run_id), keys.runs_alive_for_run(run_id), keys.run_crashed(run_id)]
        mode = "terminal" if record.state.is_terminal else "record"
        args = [mode, run_id, repr(float(timeout_s)), record.model_dump_json()]
        args += [str(record.seq), str(record.state)]
    args.append("" if max_len is None else str(max_len))
    args.append("1" if first_send else "resend" if resend else "")
    args.extend(payload for _, payload in events)
    return head + streams, args


def alive_args(keys: Keys, run_id: str, timeout_s: float) -> tuple[list[str], list[str]]:
    """``KEYS`` and ``ARGV`` of ``ALIVE_SCRIPT`` for ``run_id``."""
    return (
        [keys.runs_alive_for_run(run_id), keys.run_crashed(run_id), keys.run_cancel(run_id)],
        [run_id, repr(float(timeout_s))],
    )


def queue_events(pipe: Any, keys: Keys, events: list[RunEvent | OpEvent]) -> None:
    """Queue an XADD per event on its run's stream, in order."""
    for event in events:
        pipe.xadd(keys.stream_for_run(event.run_id), {EVENT_FIELD: encode_event(event)})


def crash_events(record: RunRecord, crash: CrashInfo) -> list[RunEvent | OpEvent]:
    """The events that end a crashed run: each running op, then the run, in ``seq`` order."""
    error = ErrorInfo(type="Crashed", message=crash_message(record, crash))
    occurred_at = utc_now()
    events: list[RunEvent | OpEvent] = []
    seq = record.seq
    for step_key in sorted(record.running):
        running = record.running[step_key]
        seq += 1
        events.append(
            OpEvent(
                seq=seq,
                occurred_at=occurred_at,
                run=record.run,
                op=running.op,
                hooks=running.hooks,
                error=error,
                message=error.message,
                crash=crash,
                from_state=running.state,
                to_state=OpState.CRASHED,
            )
        )
    events.append(
        RunEvent(
            seq=seq + 1,
            occurred_at=occurred_at,
            run=record.run,
            hooks=record.hooks,
            error=error,
            message=error.message,
            crash=crash,
            from_state=record.state,
            to_state=RunState.CRASHED,
        )
    )
    return events


def crash_message(record: RunRecord, crash: CrashInfo) -> str:
    """One line an on-call engineer can act on: which process, how it ended, who saw it."""
    where = f"process {crash.pid or record.pid} on {crash.host or record.host or '?'}"
    if crash.reason == "signal":
        how = f"was killed by {crash.signal} (exit code {crash.exit_code})"
    elif crash.reason == "exit":
        how = f"exited with code {crash.exit_code} before the run ended"
    elif crash.reason == "heartbeat_lost":
        how = "stopped heartbeating (machine or container lost?)"
    else:
        how = f"ended the run abnormally ({crash.signal or 'exception'})"
    # Shown after the error type ("Crashed: …"), so it does not say "crashed" again.
    run = f"run {record.run.run_id!r} of job {record.run.job_name!r}"
    return f"{where} running {run} {how}"


#: ``ZREM`` the run from the liveness ZSET (KEYS[1]); if this call removed it, set the
#: run's tombstone (KEYS[3], TTL ARGV[3]), give the record (KEYS[2]) a grace TTL (ARGV[2])
#: and return ``{1, record}`` (``record`` empty when there is none); else return 0. One
#: round trip; exactly one caller wins a run.
CLAIM_SCRIPT: Final = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('SET', KEYS[3], '1', 'EX', ARGV[3])
local record = redis.call('HGET', KEYS[2], 'record')
redis.call('EXPIRE', KEYS[2], ARGV[2])
return {1, record or ''}
"""


#: How many of ``claim_args`` are keys (``EVAL``'s numkeys).
CLAIM_NUMKEYS: Final = 3


def claim_args(keys: Keys, run_id: str) -> list[str]:
    """``KEYS`` then ``ARGV`` of ``CLAIM_SCRIPT`` for ``run_id``."""
    return [
        keys.runs_alive_for_run(run_id),
        keys.run_record(run_id),
        keys.run_crashed(run_id),
        run_id,
        str(RUN_RECORD_GRACE_S),
        str(RUN_CRASHED_TTL_S),
    ]


def parse_claim(reply: Any) -> tuple[bool, RunRecord | None]:
    """``(claimed, record)`` from ``CLAIM_SCRIPT``'s reply."""
    if not isinstance(reply, list):
        return False, None
    raw = reply[1]
    return True, (RunRecord.model_validate_json(raw) if raw else None)
