"""Running the handlers of one event: skip what already succeeded, isolate the rest.

Each handler runs on its own: one that raises is dead-lettered with its error while the
others carry on, and a handler that already succeeded for this event (per the ledger) is
not run again when the event is redelivered.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor

from bus.deadletter import DeadLetters
from bus.events import OpEvent, RunEvent, encode_event, utc_now
from bus.ledger import Ledger
from sensors.boundary import call_user_code
from sensors.errors import CodeLocationError, HookExecutionError
from sensors.handlers import Handler
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
        executor: the bounded thread pool for sync user code.
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
        executor: Executor,
    ) -> None:
        self._ledger = ledger
        self._dead_letters = dead_letters
        self._resources = resources
        self._consumer = consumer
        self._slots = asyncio.Semaphore(concurrency)
        self._timeout_s = timeout_s
        self._executor = executor
        self.succeeded = 0
        self.failed = 0

    def __repr__(self) -> str:
        return (
            f"<Dispatcher consumer={self._consumer!r} succeeded={self.succeeded} "
            f"failed={self.failed}>"
        )

    async def run_handlers(
        self, event: RunEvent | OpEvent, handlers: list[Handler], *, stream: str, entry_id: str
    ) -> None:
        """Run every handler for ``event``; return when each succeeded or was dead-lettered."""
        await asyncio.gather(
            *(
                self.run_handler(event, handler, stream=stream, entry_id=entry_id)
                for handler in handlers
            )
        )

    async def run_handler(
        self, event: RunEvent | OpEvent, handler: Handler, *, stream: str, entry_id: str
    ) -> None:
        """Run one handler once (unless it already succeeded for this event)."""
        if await self._ledger.already_done(event.event_id, handler.name):
            logger.info(
                "skipped (already done) handler=%s event_id=%s", handler.name, event.event_id
            )
            return
        async with self._slots:
            try:
                await self._call(event, handler, attempt=1)
            except (HookExecutionError, CodeLocationError) as exc:
                self.failed += 1
                await self._dead_letters.add(
                    stream=stream,
                    entry_id=entry_id,
                    payload=encode_event(event),
                    reason="handler_failed",
                    error=str(exc),
                    handler=handler.name,
                    event_id=event.event_id,
                    attempts=1,
                )

    async def _call(self, event: RunEvent | OpEvent, handler: Handler, *, attempt: int) -> None:
        started_at = utc_now()
        latency_ms = (started_at - event.occurred_at).total_seconds() * 1000
        logger.info(
            "handler started handler=%s event_id=%s run_id=%s state=%s latency_ms=%.1f",
            handler.name,
            event.event_id,
            event.run_id,
            event.to_state,
            latency_ms,
        )
        resources = await self._resources.build(handler, event_id=event.event_id, attempt=attempt)
        await call_user_code(
            handler.fn,
            *handler.build_args(resources),
            handler=handler.name,
            event_id=event.event_id,
            attempt=attempt,
            timeout_s=self._timeout_s,
            executor=self._executor,
            **handler.kwargs,
        )
        await self._ledger.record(
            event.event_id,
            handler.name,
            consumer=self._consumer,
            started_at=started_at,
            finished_at=utc_now(),
        )
        self.succeeded += 1
        logger.info("handler succeeded handler=%s event_id=%s", handler.name, event.event_id)
