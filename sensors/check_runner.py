"""Evaluating time-based checks (``sensors.checks``) and calling them when they fire.

Runs as the ``time-checks`` periodic job (one worker at a time). Stuck runs come from the
crash contract's run records (``bus.runs``); freshness and failure counts from the run
events still in the streams within the window. A check fires once per occurrence (a
``Keys.check_fired`` key); its function goes through the user-code boundary, is retried
with backoff, and is dead-lettered when it keeps failing. A worker that dies while calling
it does not call it again (at most once, unlike hooks).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import cast

import redis.asyncio as aioredis

from bus.backoff import Backoff
from bus.deadletter import DeadLetters
from bus.errors import EventValidationError
from bus.events import RunEvent, decode_event
from bus.keys import Keys
from bus.publisher import EVENT_FIELD
from bus.runs import RunRecord
from bus.states import RunState
from sensors.boundary import call_user_code
from sensors.checks import CheckContext, CheckDefinition, CheckKind
from sensors.errors import HookExecutionError
from sensors.hook_threads import HookThreads

logger = logging.getLogger(__name__)

#: Entries read per XRANGE while scanning a window.
SCAN_CHUNK = 1_000
_FAILED = {RunState.FAILED, RunState.CRASHED}


class CheckRunner:
    """Evaluates checks and calls those that fire.

    Args:
        client: an asyncio Redis client.
        keys: key names.
        checks: the code location's checks.
        retry: when to call a failing check function again.
        timeout_s: time limit of one call, in seconds.
        threads: the thread pool for sync check functions (not the hooks': a hung hook
            must not delay checks, nor a hung check hooks).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        keys: Keys,
        checks: list[CheckDefinition],
        retry: Backoff,
        timeout_s: float,
        threads: HookThreads,
    ) -> None:
        self._client = client
        self._keys = keys
        self.checks = checks
        self._retry = retry
        self._timeout_s = timeout_s
        self._threads = threads
        self._dead_letters = DeadLetters(client, keys=keys)

    def __repr__(self) -> str:
        return f"<CheckRunner checks={[check.name for check in self.checks]}>"

    async def run_once(self, *, now: datetime | None = None) -> list[CheckContext]:
        """Evaluate every check; call those that fire; return what fired."""
        moment = now or datetime.now(UTC)
        fired: list[CheckContext] = []
        for check in self.checks:
            for context in await self._evaluate(check, moment):
                subject = context.run_id or context.job_name
                key = self._keys.check_fired(check.name, subject)
                ttl_s = max(1, int(check.within.total_seconds()))
                if await self._client.set(key, moment.isoformat(), nx=True, ex=ttl_s):
                    logger.warning("check fired check=%s %s", check.name, context.message)
                    await self._call(check, context, subject)
                    fired.append(context)
        return fired

    async def _evaluate(self, check: CheckDefinition, now: datetime) -> list[CheckContext]:
        if check.kind is CheckKind.RUN_STUCK:
            return await self._stuck_runs(check, now)
        since = now - check.within
        outcomes = [event.to_state async for event in self._run_events(check.job_name, since)]
        if check.kind is CheckKind.NOT_FRESH and RunState.COMPLETED not in outcomes:
            message = f"job {check.job_name} has not completed successfully since {since:%F %T} UTC"
            return [_context(check, now, message)]
        failures = sum(1 for state in outcomes if state in _FAILED)
        if check.kind is CheckKind.FAILURE_COUNT and failures >= check.failures:
            message = f"job {check.job_name} failed {failures} times since {since:%F %T} UTC"
            return [_context(check, now, message, count=failures)]
        return []

    async def _stuck_runs(self, check: CheckDefinition, now: datetime) -> list[CheckContext]:
        stuck: list[CheckContext] = []
        for alive in self._keys.all_runs_alive():
            for raw_id in await self._client.zrange(alive, 0, -1):
                run_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                fields = cast(
                    dict[bytes, bytes], await self._client.hgetall(self._keys.run_record(run_id))
                )
                record = RunRecord.from_hash(fields) if fields else None
                if record is None or record.run.job_name != check.job_name:
                    continue
                started = record.run.started_at
                if record.state is RunState.RUNNING and started and now - started > check.within:
                    message = (
                        f"run {run_id} of job {check.job_name} has been running for "
                        f"{_minutes(now - started)} min (limit {_minutes(check.within)} min)"
                    )
                    stuck.append(_context(check, now, message, run_id=run_id))
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

    async def _call(self, check: CheckDefinition, context: CheckContext, subject: str) -> None:
        attempt = 1
        while True:
            try:
                await call_user_code(
                    check.fn,
                    context,
                    handler=f"check:{check.name}",
                    event_id=subject,
                    attempt=attempt,
                    timeout_s=self._timeout_s,
                    threads=self._threads,
                )
                return
            except HookExecutionError as exc:
                delay_s = self._retry.delay_s(attempt)
                if delay_s is None:
                    await self._give_up(check, context, exc, attempt)
                    return
                logger.warning(
                    "check failed check=%s attempt=%d; retrying in %.2fs: %s",
                    check.name,
                    attempt,
                    delay_s,
                    exc,
                )
            await _sleep(delay_s)
            attempt += 1

    async def _give_up(
        self, check: CheckDefinition, context: CheckContext, exc: Exception, attempts: int
    ) -> None:
        await self._dead_letters.add(
            stream=self._keys.events_stream(0),
            entry_id="",
            payload=json.dumps({"check": check.name, "message": context.message}).encode(),
            reason="check_failed",
            error=str(exc),
            handler=f"check:{check.name}",
            attempts=attempts,
        )


def _run_event(raw: bytes | None, needle: bytes) -> RunEvent | None:
    # Cheap byte tests first: most entries are op events or other jobs'.
    if raw is None or b'"type":"run"' not in raw or needle not in raw:
        return None
    try:
        event = decode_event(raw)
    except EventValidationError:
        return None
    return event if isinstance(event, RunEvent) else None


def _context(
    check: CheckDefinition,
    now: datetime,
    message: str,
    *,
    run_id: str | None = None,
    count: int = 0,
) -> CheckContext:
    return CheckContext(
        check_name=check.name,
        kind=check.kind,
        job_name=check.job_name,
        message=message,
        fired_at=now,
        run_id=run_id,
        count=count,
        log=logging.getLogger(f"hookbus.checks.{check.name}"),
    )


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)
