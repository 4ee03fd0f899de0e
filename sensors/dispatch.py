"""Running the handlers of one event: skip what already succeeded, isolate the rest.

Each handler runs on its own: one that raises is retried with exponential backoff and
jitter (``bus.backoff.Backoff``) up to ``handler_max_attempts``, then dead-lettered with its
error and attempt count, while the others carry on. A handler that already succeeded for
this event (per the ledger) is not run again, neither on a retry of its siblings nor when
the event is redelivered. A handler waiting for its next attempt holds no slot, so it
never delays the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

import redis

from bus.backoff import Backoff
from bus.deadletter import DeadLetters
from bus.events import OpEvent, RunEvent, encode_event, utc_now
from bus.ledger import Ledger
from sensors.boundary import call_user_code
from sensors.errors import CodeLocationError, HookExecutionError
from sensors.handlers import Handler
from sensors.hook_threads import HookThreads
from sensors.metrics import (
    DEAD_LETTERS,
    EVENT_TO_HANDLER_START,
    HANDLER_DURATION,
    HANDLER_RUNS,
    handler_kind,
)
from sensors.resources import ResourceBuilder

logger = logging.getLogger(__name__)


class Dispatcher:
    """Runs handlers for events, at most ``concurrency`` at a time.

    Args:
        ledger: the idempotency records.
        dead_letters: where failed handlers go.
        resources: builds the handlers' resources.
        consumer: this worker's consumer name (recorded in the ledger).
        concurrency: handlers running at once.
        timeout_s: per-handler time limit, in seconds.
        threads: the bounded thread pool for sync user code.
        retry: when to try a failed handler again (``None`` once attempts are used up).
        reconnect: how long to wait between attempts to record a success while Redis is
            away.
    """

    def __init__(
        self,
        *,
        ledger: Ledger,
        dead_letters: DeadLetters,
        resources: ResourceBuilder,
        consumer: str,
        concurrency: int,
        timeout_s: float,
        threads: HookThreads,
        retry: Backoff,
        reconnect: Backoff,
    ) -> None:
        self._ledger = ledger
        self._dead_letters = dead_letters
        self._resources = resources
        self._consumer = consumer
        self._slots = asyncio.Semaphore(concurrency)
        self._timeout_s = timeout_s
        self._threads = threads
        self.retry = retry
        self._reconnect = reconnect
        self.succeeded = 0
        self.retried = 0
        self.failed = 0

    def __repr__(self) -> str:
        return (
            f"<Dispatcher consumer={self._consumer!r} succeeded={self.succeeded} "
            f"retried={self.retried} failed={self.failed}>"
        )

    async def run_handlers(
        self, event: RunEvent | OpEvent, handlers: list[Handler], *, stream: str, entry_id: str
    ) -> None:
        """Run every handler for ``event`` that has not succeeded on it yet; return when each
        succeeded or was dead-lettered."""
        done = await self._ledger.done(event.event_id, [handler.name for handler in handlers])
        for name in done:
            HANDLER_RUNS.labels(handler_kind(name), "skipped_duplicate").inc()
            logger.info("skipped (already done) handler=%s event_id=%s", name, event.event_id)
        await asyncio.gather(
            *(
                self.run_handler(event, handler, stream=stream, entry_id=entry_id)
                for handler in handlers
                if handler.name not in done
            )
        )

    async def run_handler(
        self, event: RunEvent | OpEvent, handler: Handler, *, stream: str, entry_id: str
    ) -> None:
        """Run one handler, retrying it with backoff; dead-letter it when attempts run out."""
        attempt = 1
        while True:
            try:
                async with self._slots:
                    await self._call(event, handler, attempt=attempt)
                return
            except (HookExecutionError, CodeLocationError) as exc:
                delay_s = _next_delay_s(self.retry, attempt, exc)
                if delay_s is None:
                    await self._give_up(event, handler, exc, attempt, stream, entry_id)
                    return
                self.retried += 1
                HANDLER_RUNS.labels(handler_kind(handler.name), "failed").inc()
                logger.warning(
                    "handler failed handler=%s event_id=%s attempt=%d; retrying in %.2fs: %s",
                    handler.name,
                    event.event_id,
                    attempt,
                    delay_s,
                    exc,
                )
            await asyncio.sleep(delay_s)
            attempt += 1

    async def _give_up(
        self,
        event: RunEvent | OpEvent,
        handler: Handler,
        exc: Exception,
        attempts: int,
        stream: str,
        entry_id: str,
    ) -> None:
        self.failed += 1
        HANDLER_RUNS.labels(handler_kind(handler.name), "dead_lettered").inc()
        DEAD_LETTERS.labels("handler_failed").inc()
        await self._dead_letters.add(
            stream=stream,
            entry_id=entry_id,
            payload=encode_event(event),
            reason="handler_failed",
            error=str(exc),
            handler=handler.name,
            event_id=event.event_id,
            attempts=attempts,
        )

    async def _call(self, event: RunEvent | OpEvent, handler: Handler, *, attempt: int) -> None:
        started_at = utc_now()
        kind = handler_kind(handler.name)
        latency_s = (started_at - event.occurred_at).total_seconds()
        EVENT_TO_HANDLER_START.labels(kind).observe(max(latency_s, 0.0))
        # One INFO line per handler run (its outcome, below); the start is DEBUG, since at
        # thousands of events a second a second line per handler costs as much as the hook.
        logger.debug(
            "handler started handler=%s event_id=%s run_id=%s state=%s attempt=%d",
            handler.name,
            event.event_id,
            event.run_id,
            event.to_state,
            attempt,
        )
        resources = await self._resources.build(handler, event_id=event.event_id, attempt=attempt)
        clock = time.perf_counter()
        result = await call_user_code(
            handler.fn,
            *handler.build_args(resources),
            handler=handler.name,
            event_id=event.event_id,
            attempt=attempt,
            timeout_s=self._timeout_s,
            threads=self._threads,
            **handler.kwargs,
        )
        if handler.after is not None:
            await handler.after(result)
        duration_s = time.perf_counter() - clock
        HANDLER_DURATION.labels(kind).observe(duration_s)
        await self._record(event, handler, started_at=started_at, finished_at=utc_now())
        self.succeeded += 1
        HANDLER_RUNS.labels(kind, "succeeded").inc()
        logger.info(
            "handler succeeded handler=%s event_id=%s run_id=%s state=%s attempt=%d "
            "latency_ms=%.1f duration_ms=%.1f",
            handler.name,
            event.event_id,
            event.run_id,
            event.to_state,
            attempt,
            latency_s * 1000,
            duration_s * 1000,
        )

    async def _record(
        self,
        event: RunEvent | OpEvent,
        handler: Handler,
        *,
        started_at: datetime,
        finished_at: datetime,
    ) -> None:
        # The side effect has happened: keep trying to record it while Redis is away, since
        # an unrecorded success would run again on redelivery.
        attempt = 1
        while True:
            try:
                await self._ledger.record(
                    event.event_id,
                    handler.name,
                    consumer=self._consumer,
                    started_at=started_at,
                    finished_at=finished_at,
                )
                return
            except redis.RedisError as exc:
                delay_s = self._reconnect.delay_s(attempt) or self._reconnect.max_s
                logger.warning(
                    "recording success failed handler=%s event_id=%s (%s); retrying in %.2fs",
                    handler.name,
                    event.event_id,
                    type(exc).__name__,
                    delay_s,
                )
            await asyncio.sleep(delay_s)
            attempt += 1


def _next_delay_s(retry: Backoff, attempt: int, exc: Exception) -> float | None:
    """Seconds before the next attempt, or ``None`` to give up now.

    What user code raised may say no with ``retryable = False``
    (``notifiers.PermanentNotifierError``: a bad token, an unknown channel), so it is
    dead-lettered at once instead of hammering the destination; and it may ask for a
    longer wait with ``retry_after_s`` (a Slack 429's ``Retry-After``), honoured up to
    the backoff's cap.
    """
    cause = exc.__cause__
    if not getattr(cause, "retryable", True):
        return None
    delay_s = retry.delay_s(attempt)
    hint = getattr(cause, "retry_after_s", None)
    if delay_s is None or not isinstance(hint, int | float):
        return delay_s
    return max(delay_s, min(float(hint), retry.max_s))
