"""Evaluating time-based checks (``sensors.checks``) and publishing what fires.

Runs as the ``time-checks`` periodic job (one worker at a time, under a lease). Each
evaluation:

1. takes "now" from the Redis server's clock (``bus.runs.server_time``), the clock the
   run records' deadlines are on, whichever worker evaluates;
2. brings the check history up to date (``sensors.check_index.HistoryIndex.catch_up``:
   the streams' new entries only, once for all checks);
3. evaluates each check: stuck runs from the crash contract's run records
   (``bus.runs``), freshness and failure counts from the history (``bus.check_history``)
   and the check's own state (``Keys.check_state``);
4. publishes one ``CheckEvent`` per new occurrence (``bus.checks.FIRE_SCRIPT``).

The check's function is not called here: workers run it for the event like a hook
(``sensors.handlers.check_handlers``), so it gets the ledger, retries, dead letters, the
time limit and resources, and a worker dying mid-call is covered by the reclaim.

Freshness counts its window from the later of the job's last success and the moment the
check began watching (its first evaluation, kept in Redis): a job that never ran, or
whose last success the history does not know, fires one full window after the check was
deployed, not at once; then again every window while no success comes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, cast

import redis.asyncio as aioredis

from bus.check_history import failures_since, last_success
from bus.checks import FIRE_SCRIPT, RunGuard, check_event_id, fire_args, marker_ttl_s
from bus.events import CheckEvent, CheckKind
from bus.keys import Keys
from bus.runs import RECORD_FIELD, RunRecord, server_time
from bus.states import RunState
from bus.utils import text
from notifiers.check_format import window
from sensors.check_index import HistoryIndex
from sensors.checks import CheckDefinition

logger = logging.getLogger(__name__)

#: How many failed run ids a failure-count event names.
FAILED_RUNS_SHOWN: Final = 5


@dataclass(frozen=True, slots=True)
class Occurrence:
    """A check's finding, ready for ``FIRE_SCRIPT``."""

    event: CheckEvent
    ttl_s: int
    run_guard: RunGuard | None = None
    counted_through: float | None = None


@dataclass(frozen=True, slots=True)
class AliveRun:
    """A live run's record, and its ``state_since`` exactly as stored."""

    record: RunRecord
    raw_since: str


class CheckRunner:
    """Evaluates checks and publishes an event for each new occurrence.

    Args:
        client: an asyncio Redis client.
        keys: key names.
        checks: the code location's checks.
    """

    def __init__(
        self, client: aioredis.Redis, *, keys: Keys, checks: list[CheckDefinition]
    ) -> None:
        self._client = client
        self._keys = keys
        self.checks = checks
        keep_s: dict[str, float] = {}
        for check in checks:
            if check.kind is CheckKind.FAILURE_COUNT:
                seconds = check.within.total_seconds()
                keep_s[check.job_name] = max(keep_s.get(check.job_name, 0.0), seconds)
        self.index = HistoryIndex(client, keys=keys, keep_s=keep_s)

    def __repr__(self) -> str:
        return f"<CheckRunner checks={[check.name for check in self.checks]}>"

    async def run_once(self, *, now: datetime | None = None) -> list[CheckEvent]:
        """Evaluate every check; publish an event for each new occurrence; return those.

        Args:
            now: the evaluation's time (tests); default: the Redis server's clock.
        """
        moment = now or await server_time(self._client)
        if any(check.kind is not CheckKind.RUN_STUCK for check in self.checks):
            await self.index.catch_up(moment.timestamp())
        alive = await self._alive_runs() if self._watches_runs() else []
        fired: list[CheckEvent] = []
        for check in self.checks:
            for occurrence in await self._evaluate(check, moment, alive):
                if await self._fire(occurrence):
                    fired.append(occurrence.event)
        return fired

    def _watches_runs(self) -> bool:
        return any(check.kind is CheckKind.RUN_STUCK for check in self.checks)

    async def _fire(self, occurrence: Occurrence) -> bool:
        event = occurrence.event
        keys, args = fire_args(
            self._keys,
            event,
            ttl_s=occurrence.ttl_s,
            run_guard=occurrence.run_guard,
            counted_through=occurrence.counted_through,
        )
        if await self._client.eval(FIRE_SCRIPT, len(keys), *keys, *args) != 1:
            return False
        logger.warning(
            "check fired check=%s job=%s run_id=%s event_id=%s %s",
            event.check_name,
            event.job_name,
            event.run_id or "-",
            event.event_id,
            event.message,
        )
        return True

    async def _evaluate(
        self, check: CheckDefinition, now: datetime, alive: list[AliveRun]
    ) -> list[Occurrence]:
        if check.kind is CheckKind.RUN_STUCK:
            return [found for run in alive if (found := _stuck(check, run, now)) is not None]
        if check.kind is CheckKind.NOT_FRESH:
            return await self._not_fresh(check, now)
        return await self._failure_count(check, now)

    async def _alive_runs(self) -> list[AliveRun]:
        runs: list[AliveRun] = []
        for alive in self._keys.all_runs_alive():
            for raw_id in await self._client.zrange(alive, 0, -1):
                fields = cast(
                    dict[bytes, bytes],
                    await self._client.hgetall(self._keys.run_record(text(raw_id))),
                )
                record = RunRecord.from_hash(fields) if fields else None
                if record is not None:
                    raw = json.loads(fields[RECORD_FIELD.encode()]).get("state_since")
                    runs.append(AliveRun(record, raw if isinstance(raw, str) else ""))
        return runs

    async def _not_fresh(self, check: CheckDefinition, now: datetime) -> list[Occurrence]:
        state = self._keys.check_state(check.name, check.job_name)
        await self._client.hsetnx(state, "watching_since", repr(now.timestamp()))
        watching_s = float(text(await self._client.hget(state, "watching_since")))
        success = await last_success(self._client, self._keys, check.job_name)
        since_s = max(watching_s, success.at_s if success is not None else watching_s)
        within_s = check.within.total_seconds()
        stale_s = now.timestamp() - since_s
        if stale_s < within_s:
            return []
        windows = int((stale_s - within_s) // max(within_s, 1.0))
        watching = datetime.fromtimestamp(watching_s, UTC)
        if success is not None:
            seen = f"since {success.at:%F %T} UTC (run {success.run_name})"
        else:
            seen = f"since {watching:%F %T} UTC (no success seen since the check began watching)"
        event = CheckEvent(
            event_id=check_event_id(check.name, check.job_name, f"{since_s:.3f}\0{windows}"),
            occurred_at=now,
            check_name=check.name,
            kind=check.kind,
            job_name=check.job_name,
            message=f"job {check.job_name} has not completed successfully {seen}",
            within_s=within_s,
            last_success_at=None if success is None else success.at,
            last_success_run_id=None if success is None else success.run_id,
            last_success_run_name=None if success is None else success.run_name,
            watching_since=watching,
        )
        return [Occurrence(event, marker_ttl_s(within_s))]

    async def _failure_count(self, check: CheckDefinition, now: datetime) -> list[Occurrence]:
        state = self._keys.check_state(check.name, check.job_name)
        through = await self._client.hget(state, "counted_through")
        within_s = check.within.total_seconds()
        since_s = now.timestamp() - within_s
        if through is not None:
            since_s = max(since_s, float(text(through)))
        failed = await failures_since(self._client, self._keys, check.job_name, since_s)
        if len(failed) < check.failures:
            return []
        newest = failed[-1]
        errors = [outcome.error for outcome in reversed(failed) if outcome.error]
        count = len(failed)
        shown = failed[-FAILED_RUNS_SHOWN:][::-1]  # newest first
        event = CheckEvent(
            event_id=check_event_id(check.name, check.job_name, newest.run_id),
            occurred_at=now,
            check_name=check.name,
            kind=check.kind,
            job_name=check.job_name,
            message=(
                f"job {check.job_name} failed {count} times in the last {window(within_s)} "
                f"(newest: run {newest.run_name})"
            ),
            within_s=within_s,
            count=count,
            failures=check.failures,
            failed_run_ids=tuple(outcome.run_id for outcome in shown),
            failed_run_names=tuple(outcome.run_name for outcome in shown),
            last_error=errors[0] if errors else None,
        )
        return [Occurrence(event, marker_ttl_s(within_s), counted_through=newest.at_s)]


def _stuck(check: CheckDefinition, alive: AliveRun, now: datetime) -> Occurrence | None:
    record = alive.record
    since = _state_since(record)
    if record.run.job_name != check.job_name or record.state not in check.states:
        return None
    if since is None or now - since <= check.within:
        return None
    repeat = 0
    if check.repeat_every is not None:
        repeat = int((now - since - check.within) / check.repeat_every)
    occurrence = f"{record.state}\0{alive.raw_since or since.isoformat()}\0{repeat}"
    run = record.run
    limit = window(check.within.total_seconds())
    event = CheckEvent(
        event_id=check_event_id(check.name, run.run_id, occurrence),
        occurred_at=now,
        check_name=check.name,
        kind=check.kind,
        job_name=check.job_name,
        message=(
            f"run {run.run_id} ({run.run_name}) of job {check.job_name} has been "
            f"{record.state} for {_minutes(now - since)} (limit {limit})"
        ),
        within_s=check.within.total_seconds(),
        run=run,
        run_state=record.state,
        state_since=since,
    )
    span_s = check.repeat_every.total_seconds() if check.repeat_every is not None else 0.0
    guard = RunGuard(state=str(record.state), state_since=alive.raw_since)
    return Occurrence(event, marker_ttl_s(span_s), run_guard=guard)


def _state_since(record: RunRecord) -> datetime | None:
    # A record written without ``state_since`` (by hand, in tests) only says when the
    # attempt started, which is when a running run entered its state.
    if record.state_since is not None:
        return record.state_since
    return record.run.started_at if record.state is RunState.RUNNING else None


def _minutes(delta: timedelta) -> str:
    """How long, as people say it: whole minutes past the first (``2 h 5 min``)."""
    seconds = max(delta.total_seconds(), 0.0)
    return window(seconds if seconds < 60 else seconds // 60 * 60)
