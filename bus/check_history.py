"""The check history: each job's newest success and recent failures, kept incrementally.

Time-based checks (``sensors.check_runner``) must know when a job last succeeded and which
of its runs failed within a window, and the event streams cannot tell them: they are
trimmed by age and size, so a window longer than their retention would look empty, and
reading a window back on every evaluation costs a scan of it. So the check runner reads
each shard's stream once, from its cursor (``Keys.check_cursor``) to the end, and records
every run's end here (``HISTORY_SCRIPT``):

- ``Keys.job_successes``: the job's newest successful run (run_id -> ``occurred_at``);
- ``Keys.job_failures``: its failed and crashed runs, one member per run id, trimmed to
  the largest window of the job's failure-count checks (``HISTORY_MIN_KEEP_S`` at least);
- ``Keys.job_runs``: each of those runs' name and error, trimmed with them.

Times are the events' own ``occurred_at`` (when the run ended), never stream ids. Writing
is idempotent: reading an entry twice (a runner that died before saving its cursor)
changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast

import redis.asyncio as aioredis

from bus.events import RunEvent
from bus.keys import Keys
from bus.states import RunState

#: How long a job's history lives after its last write, in seconds: a job silent for
#: longer reads as never seen (freshness then says "no success seen since ...").
HISTORY_TTL_S: Final = 30 * 24 * 3600
#: Failures are kept at least this long (seconds), for jobs no failure-count check watches.
HISTORY_MIN_KEEP_S: Final = 24 * 3600
#: At most this many failures are kept per job (the newest).
MAX_FAILURES_KEPT: Final = 10_000
#: An error message is kept up to this many characters.
MAX_ERROR_CHARS: Final = 300
#: The run states that count as a failure.
FAILED_STATES: Final = frozenset({RunState.FAILED, RunState.CRASHED})

#: KEYS: successes, failures, runs. ARGV: trim failures older than ARGV[1] (epoch s), TTL
#: (s), then per run: outcome (``ok`` or ``failed``), run_id, occurred_at (epoch s), info
#: JSON. Keeps only the newest success; removes the info of runs no longer kept.
HISTORY_SCRIPT: Final = f"""
for i = 3, #ARGV, 4 do
  local key = KEYS[2]
  if ARGV[i] == 'ok' then key = KEYS[1] end
  redis.call('ZADD', key, ARGV[i + 2], ARGV[i + 1])
  redis.call('HSET', KEYS[3], ARGV[i + 1], ARGV[i + 3])
end
local gone = redis.call('ZRANGE', KEYS[1], 0, -2)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1])) do
  table.insert(gone, id)
end
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -{MAX_FAILURES_KEPT + 1})) do
  table.insert(gone, id)
end
for _, id in ipairs(gone) do redis.call('HDEL', KEYS[3], id) end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -2)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -{MAX_FAILURES_KEPT + 1})
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[2]) end
return 1
"""


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """One run's end, as the history keeps it.

    Attributes:
        run_id: the run.
        run_name: its name.
        at_s: when it ended (the event's ``occurred_at``), epoch seconds, exactly as the
            history's score (so it can bound a later query).
        error: its error message (failures), else ``""``.
    """

    run_id: str
    run_name: str
    at_s: float
    error: str = ""

    @property
    def at(self) -> datetime:
        """When it ended, in UTC."""
        return datetime.fromtimestamp(self.at_s, UTC)


def outcome_of(event: RunEvent) -> RunOutcome | None:
    """The history entry for ``event``: a run that completed, failed or crashed."""
    if event.to_state is not RunState.COMPLETED and event.to_state not in FAILED_STATES:
        return None
    error = event.error.message if event.error is not None else event.message
    return RunOutcome(
        run_id=event.run_id,
        run_name=event.run.run_name,
        at_s=event.occurred_at.timestamp(),
        error=error[:MAX_ERROR_CHARS] if event.to_state in FAILED_STATES else "",
    )


def history_args(
    keys: Keys, job_name: str, ended: list[tuple[bool, RunOutcome]], *, keep_from: float
) -> tuple[list[str], list[str]]:
    """``KEYS`` and ``ARGV`` of ``HISTORY_SCRIPT`` recording ``(succeeded, outcome)`` pairs
    of ``job_name``, keeping failures from ``keep_from`` (epoch s) on."""
    args = [repr(keep_from), str(HISTORY_TTL_S)]
    for succeeded, outcome in ended:
        info = json.dumps({"name": outcome.run_name, "error": outcome.error})
        args += ["ok" if succeeded else "failed", outcome.run_id, repr(outcome.at_s)]
        args.append(info)
    return [
        keys.job_successes(job_name),
        keys.job_failures(job_name),
        keys.job_runs(job_name),
    ], args


async def last_success(client: aioredis.Redis, keys: Keys, job_name: str) -> RunOutcome | None:
    """The job's newest successful run the history knows of, or ``None``."""
    newest = cast(
        list[tuple[bytes, float]],
        await client.zrange(keys.job_successes(job_name), -1, -1, withscores=True),
    )
    found = await _outcomes(client, keys, job_name, newest)
    return found[0] if found else None


async def failures_since(
    client: aioredis.Redis, keys: Keys, job_name: str, since: float
) -> list[RunOutcome]:
    """The job's failed runs that ended after ``since`` (epoch s), oldest first."""
    members = cast(
        list[tuple[bytes, float]],
        await client.zrangebyscore(
            keys.job_failures(job_name), f"({since!r}", "+inf", withscores=True
        ),
    )
    return await _outcomes(client, keys, job_name, members)


async def _outcomes(
    client: aioredis.Redis, keys: Keys, job_name: str, members: list[tuple[bytes, float]]
) -> list[RunOutcome]:
    if not members:
        return []
    run_ids = [member.decode() for member, _ in members]
    infos = cast(list[bytes | None], await client.hmget(keys.job_runs(job_name), run_ids))
    outcomes = []
    for run_id, (_, score), raw in zip(run_ids, members, infos, strict=True):
        info: dict[str, Any] = json.loads(raw) if raw else {}
        outcomes.append(
            RunOutcome(
                run_id=run_id,
                run_name=str(info.get("name", run_id)),
                at_s=score,
                error=str(info.get("error", "")),
            )
        )
    return outcomes
