"""Publishing a time-based check's event exactly once per occurrence.

A check fires for a *subject* (a stuck run's id, or a job's name) and an *occurrence*: what
makes this firing this one and not another (``check_event_id``):

- a stuck run: (run id, the state it is stuck in, when it entered it, and the repeat
  number when the check has ``repeat_every``); a run that leaves the state, or a pending
  run that starts running, is a new occurrence;
- freshness: (the time its window counts from — the last success, or when the check began
  watching — and the number of windows since it went stale);
- failure counts: (the newest failure counted).

``FIRE_SCRIPT`` does, atomically on one Cluster slot: for a stuck run, check that the run
is still alive and still in that state since that time (its record, ``Keys.run_record``,
against what the evaluation read), else publish nothing; ``SET NX`` the occurrence's
marker (``Keys.check_fired``; if it exists, renew its TTL and stop); ``XADD`` the
``CheckEvent`` to the subject's stream (``Keys.stream_for_check``); for a failure count,
record the newest failure reported (``Keys.check_state``), so the next firing needs new
failures. So there is no moment where the event is published but the occurrence not
marked, or the reverse: a worker that dies before the script has published nothing (the
next evaluation fires it), one that dies after it has published it once; two workers
evaluating at once (a lease handed over mid-run) cannot both publish; and a run that ended
between the evaluation's read and the script gets no "stuck" event.

The event's id is derived from (check, subject, occurrence), not random. While the
marker lives (see ``marker_ttl_s``) the occurrence is never published again. Should its
marker be lost (deleted by hand, or expired because no worker evaluated the checks for
longer than ``MARKER_GRACE_S``) the occurrence is published again with the same id:
handlers that succeeded within ``HOOKBUS_IDEMPOTENCY_TTL_S`` are skipped by the ledger,
and a destination that got the alert within the rule's ``thread_ttl_s`` is not sent it
again.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Final

from bus.events import CheckEvent, encode_event
from bus.keys import HOOKS_GROUP, Keys
from bus.runs import EVENT_FIELD

#: How long an occurrence's marker outlives the last evaluation that saw it, in seconds.
MARKER_GRACE_S: Final = 24 * 3600

#: KEYS: the occurrence's marker, the stream, the guard (a stuck run's record; a failure
#: count's state; else the stream again), the stuck run's liveness ZSET (else the stream).
#: ARGV: the event id, the marker's TTL in seconds, the event's JSON, the mode, then for
#: ``run``: the expected state, the expected raw ``state_since`` (empty: none), the run id;
#: for ``state``: a field and value to set in the guard once published.
#: Creates the ``hooks`` group with the stream (at ``$``, as the engine's publisher does),
#: so the event reaches a worker even on a stream nobody wrote yet. Returns 1 if it
#: published, 0 if the occurrence had fired already (its marker's TTL renewed), -1 if the
#: run ended or changed state.
FIRE_SCRIPT: Final = f"""
if ARGV[4] == 'run' then
  if not redis.call('ZSCORE', KEYS[4], ARGV[7]) then return -1 end
  local raw = redis.call('HGET', KEYS[3], 'record')
  if not raw then return -1 end
  local record = cjson.decode(raw)
  local since = record['state_since']
  if type(since) ~= 'string' then since = '' end
  if record['state'] ~= ARGV[5] or since ~= ARGV[6] then return -1 end
end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return 0
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[2], '{HOOKS_GROUP}', '$', 'MKSTREAM')
end
redis.call('XADD', KEYS[2], '*', '{EVENT_FIELD.decode()}', ARGV[3])
if ARGV[4] == 'state' then redis.call('HSET', KEYS[3], ARGV[5], ARGV[6]) end
return 1
"""


@dataclass(frozen=True, slots=True)
class RunGuard:
    """What a stuck run's record said when the check read it; the script publishes only if
    it still says so.

    Attributes:
        state: the run's state.
        state_since: the record's ``state_since`` exactly as stored (its JSON string), or
            ``""`` when it has none.
    """

    state: str
    state_since: str


def check_subject(event: CheckEvent) -> str:
    """What the check fired about: the stuck run, or the job."""
    return event.run_id or event.job_name


def check_event_id(check: str, subject: str, occurrence: str) -> str:
    """The event id of ``check``'s ``occurrence`` for ``subject`` (see the module docstring)."""
    digest = hashlib.sha256(f"{check}\0{subject}\0{occurrence}".encode())
    return digest.hexdigest()[:32]


def marker_ttl_s(span_s: float) -> int:
    """The TTL of an occurrence's marker: the ``span_s`` seconds in which evaluations can
    derive the occurrence again, plus ``MARKER_GRACE_S`` (renewed by each of them)."""
    return max(1, math.ceil(span_s)) + MARKER_GRACE_S


def fire_args(
    keys: Keys,
    event: CheckEvent,
    *,
    ttl_s: int,
    run_guard: RunGuard | None = None,
    counted_through: float | None = None,
) -> tuple[list[str], list[Any]]:
    """``KEYS`` and ``ARGV`` of ``FIRE_SCRIPT`` for ``event``.

    Args:
        ttl_s: the marker's TTL (``marker_ttl_s``).
        run_guard: for a stuck run, what its record must still say.
        counted_through: for a failure count, the newest failure reported (epoch s).
    """
    subject = check_subject(event)
    stream = keys.stream_for_check(subject)
    marker = keys.check_fired(event.check_name, subject, event.event_id)
    head: list[Any] = [event.event_id, ttl_s, encode_event(event)]
    if run_guard is not None and event.run_id is not None:
        run_id = event.run_id
        guards = [keys.run_record(run_id), keys.runs_alive_for_run(run_id)]
        return [marker, stream, *guards], [*head, "run", *_run_args(run_guard, run_id)]
    if counted_through is not None:
        state = keys.check_state(event.check_name, event.job_name)
        return [marker, stream, state, stream], [
            *head,
            "state",
            "counted_through",
            repr(counted_through),
        ]
    return [marker, stream, stream, stream], [*head, "none"]


def _run_args(guard: RunGuard, run_id: str) -> list[str]:
    return [guard.state, guard.state_since, run_id]
