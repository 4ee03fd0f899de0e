"""Evaluating time-based checks (``sensors.checks``) and publishing what fires.

Runs as the ``time-checks`` periodic job (one worker at a time). Stuck runs come from the
crash contract's run records (``bus.runs``); freshness and failure counts from the run
events still in the streams within the window. A check that fires publishes one
``CheckEvent`` per occurrence (``bus.checks.FIRE_SCRIPT``: the occurrence's marker and
the event in one atomic script). The check's function is not called here: workers run it
for the event like a hook (``sensors.handlers.check_handlers``), so it gets the ledger,
retries, dead letters, the time limit and resources, and a worker dying mid-call is
covered by the reclaim.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import cast

import redis.asyncio as aioredis

from bus.checks import FIRE_SCRIPT, check_event_id, fire_args
from bus.errors import EventValidationError
from bus.events import CheckEvent, CheckKind, RunEvent, decode_event
from bus.keys import Keys
from bus.publisher import EVENT_FIELD
from bus.runs import RunRecord
from bus.states import RunState
from sensors.checks import CheckDefinition

logger = logging.getLogger(__name__)

#: Entries read per XRANGE while scanning a window.
SCAN_CHUNK = 1_000
_FAILED = {RunState.FAILED, RunState.CRASHED}


class CheckRunner:
    """Evaluates checks and publishes an event for each that fires.

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

    def __repr__(self) -> str:
        return f"<CheckRunner checks={[check.name for check in self.checks]}>"

    async def run_once(self, *, now: datetime | None = None) -> list[CheckEvent]:
        """Evaluate every check; publish an event for each new occurrence; return those."""
        moment = now or datetime.now(UTC)
        fired: list[CheckEvent] = []
        for check in self.checks:
            for event in await self._evaluate(check, moment):
                keys, args = fire_args(self._keys, event)
                if await self._client.eval(FIRE_SCRIPT, len(keys), *keys, *args):
                    logger.warning(
                        "check fired check=%s event_id=%s %s",
                        check.name,
                        event.event_id,
                        event.message,
                    )
                    fired.append(event)
        return fired

    async def _evaluate(self, check: CheckDefinition, now: datetime) -> list[CheckEvent]:
        if check.kind is CheckKind.RUN_STUCK:
            return await self._stuck_runs(check, now)
        since = now - check.within
        outcomes = [event.to_state async for event in self._run_events(check.job_name, since)]
        if check.kind is CheckKind.NOT_FRESH and RunState.COMPLETED not in outcomes:
            message = f"job {check.job_name} has not completed successfully since {since:%F %T} UTC"
            return [_event(check, now, message)]
        failures = sum(1 for state in outcomes if state in _FAILED)
        if check.kind is CheckKind.FAILURE_COUNT and failures >= check.failures:
            message = f"job {check.job_name} failed {failures} times since {since:%F %T} UTC"
            return [_event(check, now, message, count=failures, failures=check.failures)]
        return []

    async def _stuck_runs(self, check: CheckDefinition, now: datetime) -> list[CheckEvent]:
        stuck: list[CheckEvent] = []
        for alive in self._keys.all_runs_alive():
            for raw_id in await self._client.zrange(alive, 0, -1):
                run_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                fields = cast(
                    dict[bytes, bytes], await self._client.hgetall(self._keys.run_record(run_id))
                )
                record = RunRecord.from_hash(fields) if fields else None
                if record is None or record.run.job_name != check.job_name:
                    continue
                since = _state_since(record)
                if record.state in check.states and since and now - since > check.within:
                    message = (
                        f"run {run_id} of job {check.job_name} has been {record.state} for "
                        f"{_minutes(now - since)} min (limit {_minutes(check.within)} min)"
                    )
                    stuck.append(_event(check, now, message, record=record, since=since))
        return stuck

    async def _run_events(self, job_name: str, since: datetime) -> AsyncIterator[RunEvent]:
        needle = json.dumps(job_name).encode()
        for stream in self._keys.all_event_streams():
            start = f"{int(since.timestamp() * 1000)}-0"
            while True:
                entries = cast(
                    list[tuple[bytes, dict[bytes, bytes]]],
                    await self._client.xrange(stream, min=start, count=SCAN_CHUNK),
                )
                for _, fields in entries:
                    event = _run_event(fields.get(EVENT_FIELD), needle)
                    if event is not None and event.job_name == job_name:
                        yield event
                if len(entries) < SCAN_CHUNK:
                    break
                start = "(" + entries[-1][0].decode()


def _state_since(record: RunRecord) -> datetime | None:
    # A record written without ``state_since`` (by hand, in tests) only says when the
    # attempt started, which is when a running run entered its state.
    if record.state_since is not None:
        return record.state_since
    return record.run.started_at if record.state is RunState.RUNNING else None


def _run_event(raw: bytes | None, needle: bytes) -> RunEvent | None:
    # Cheap byte tests first: most entries are op events or other jobs'.
    if raw is None or b'"type":"run"' not in raw or needle not in raw:
        return None
    try:
        event = decode_event(raw)
    except EventValidationError:
        return None
    return event if isinstance(event, RunEvent) else None


def _event(
    check: CheckDefinition,
    now: datetime,
    message: str,
    *,
    record: RunRecord | None = None,
    since: datetime | None = None,
    count: int = 0,
    failures: int | None = None,
) -> CheckEvent:
    within_s = check.within.total_seconds()
    subject = record.run.run_id if record is not None else check.job_name
    return CheckEvent(
        event_id=check_event_id(check.name, subject, now, within_s),
        occurred_at=now,
        check_name=check.name,
        kind=check.kind,
        job_name=check.job_name,
        message=message,
        within_s=within_s,
        run=None if record is None else record.run,
        run_state=None if record is None else record.state,
        state_since=since,
        count=count,
        failures=failures,
    )


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)
