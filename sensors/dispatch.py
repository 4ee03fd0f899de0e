"""Running the handlers of one event: skip what already succeeded, isolate the rest.

Each handler runs on its own: one that raises is retried with exponential backoff and
jitter (``bus.backoff.Backoff``) up to ``handler_max_attempts``, then dead-lettered with its
error and attempt count, while the others carry on. A handler that already succeeded for
this event (per the ledger) is not run again, neither on a retry of its siblings nor when
the event is redelivered. A handler waiting for its next attempt holds no slot, so it
never delays the others.

The worker hands over a whole read batch at once (``first_attempts``): one ledger round
trip checks every (event, handler) of the batch that may have run before (all but the
hooks group's first deliveries, ``Work.needs_check``), the handlers' first attempts run
together (sync ones as one batch in the thread pool), and one round trip records the
successes. What failed, or still runs after ``BATCH_PATIENCE_S``, goes on in a task of its
own (``finish``), so a hook backing off or hanging never holds up the acks of the rest of
the batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime

import redis

from bus.backoff import Backoff
from bus.deadletter import DeadLetters
from bus.events import BusEvent, encode_event, event_state, utc_now
from bus.ledger import Ledger
from sensors.after_success import after_success
from sensors.boundary import UserCall, call_user_code_many
from sensors.errors import CodeLocationError, HookExecutionError
from sensors.handlers import Handler
from sensors.hook_threads import HookThreads, Outcome
from sensors.metrics import (
    DEAD_LETTERS,
    event_to_handler_start,
    handler_duration,
    handler_kind,
    handler_runs,
)
from sensors.resources import ResourceBuilder
from sensors.run_order import run_waves
from sensors.work import Unfinished, Work

logger = logging.getLogger(__name__)

#: How long a batch waits for its handlers' first attempts before handing the ones still
#: running to tasks of their own (``Dispatcher.finish``), so that the entries whose
#: handlers are done are acked without waiting for a slow one, in seconds.
BATCH_PATIENCE_S = 0.05


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

    async def first_attempts(
        self,
        batch: Sequence[Work],
        *,
        ends_last: bool = False,
        checked: asyncio.Event | None = None,
    ) -> list[Unfinished]:
        """The first attempt of every handler of ``batch`` not yet done, all together.

        Returns once the successes are recorded, at most ``BATCH_PATIENCE_S`` after the
        calls started (plus the round trips); or, if a later wave raises, once what earlier
        waves left running has ended (within its time limit) and is recorded.

        Args:
            ends_last: start a run's events in waves (``sensors.run_order.run_waves``:
                its first event, then its others, then its end), each once the one before
                has finished or run ``BATCH_PATIENCE_S`` (a notification rule's group).
            checked: set once the ledger has answered (or was not asked), as the calls
                start.

        Returns:
            The handlers that failed or still run: each goes on with ``finish``.

        Raises:
            redis.RedisError: the ledger could not be read (nothing ran).
            Exception: a bug of ours in a later wave (the earlier waves are recorded).
        """
        todo = await self._not_done(
            [(work, handler) for work in batch for handler in work.handlers]
        )
        if checked is not None:
            checked.set()
        if not ends_last:
            return await self._attempt(todo, attempt=1, patience_s=BATCH_PATIENCE_S)
        # The ledger was read for every wave above: a later wave adds no round trip that
        # could fail and lose what an earlier one left running.
        unfinished: list[Unfinished] = []
        try:
            for wave in run_waves(todo):
                unfinished += await self._attempt(wave, attempt=1, patience_s=BATCH_PATIENCE_S)
        except Exception:
            # A later wave failed (a bug of ours: user code's errors are outcomes), so the
            # batch is handled again one entry at a time (``Intake._isolate_bug``), asking
            # the ledger. What an earlier wave left running must be recorded first, or that
            # would run it a second time: each is settled, whatever happens to the others.
            settling = await asyncio.gather(
                *(self._settle_running(left) for left in unfinished), return_exceptions=True
            )
            for left, result in zip(unfinished, settling, strict=True):
                if isinstance(result, BaseException):
                    logger.warning(
                        "could not settle handler=%s event_id=%s after its batch failed (%s)",
                        left.handler.name,
                        left.work.event.event_id,
                        type(result).__name__,
                    )
            raise
        return unfinished

    async def _not_done(self, pairs: list[tuple[Work, Handler]]) -> list[tuple[Work, Handler]]:
        """``pairs`` less the handlers the ledger says already succeeded on their event; the
        ledger is asked only about entries that ``Work.needs_check`` (a redelivery, a copy
        or a replay may carry an event a handler already ran)."""
        asked = [i for i, (work, _) in enumerate(pairs) if work.needs_check]
        done = await self._ledger.done_many(
            [(pairs[i][0].event.event_id, pairs[i][1].name) for i in asked],
            since=[pairs[i][0].recorded_since() for i in asked],
        )
        if not any(done):
            return pairs
        skipped = {i for i, already in zip(asked, done, strict=True) if already}
        for work, handler in (pairs[i] for i in sorted(skipped)):
            handler_runs(handler_kind(handler.name), "skipped_duplicate").inc()
            logger.info(
                "skipped (already done) handler=%s event_id=%s", handler.name, work.event.event_id
            )
        return [pair for i, pair in enumerate(pairs) if i not in skipped]

    async def finish(self, unfinished: Unfinished) -> None:
        """Go on with a handler its batch left unfinished: wait for it if it still runs and
        record it if it succeeded; else back off and try again until it succeeds or its
        attempts run out (then dead-letter it)."""
        work, handler = unfinished.work, unfinished.handler
        outcome = await self._settle_running(unfinished)
        if outcome.ok:
            return
        delay_s = await self._after_failure(work, handler, outcome.value, attempt=1)
        if delay_s is not None:
            await asyncio.sleep(delay_s)
            await self.run_handler(
                work.event, handler, stream=work.stream, entry_id=work.entry_id, attempt=2
            )

    async def _settle_running(self, unfinished: Unfinished) -> Outcome:
        """The outcome of a first attempt: awaited if the call still runs (within its time
        limit), and then, if it succeeded, what follows a success run and recorded."""
        work, handler, outcome = unfinished.work, unfinished.handler, unfinished.outcome
        if isinstance(outcome, Outcome):
            return outcome
        started_at = utc_now()
        outcome = await after_success(work, handler, await outcome, 1)
        if outcome.ok:
            await self._record([(work, handler)], started_at=started_at)
            self._log_successes([(work, handler)], attempt=1, started_at=started_at)
        return outcome

    async def run_handler(
        self,
        event: BusEvent,
        handler: Handler,
        *,
        stream: str,
        entry_id: str,
        attempt: int = 1,
    ) -> None:
        """Run one handler from ``attempt`` on, retrying it with backoff; dead-letter it when
        attempts run out."""
        work = Work(event, [handler], stream, entry_id)
        while True:
            unfinished = await self._attempt([(work, handler)], attempt=attempt)
            if not unfinished:
                return
            failed = unfinished[0].outcome
            assert isinstance(failed, Outcome)  # no patience: the call has ended
            delay_s = await self._after_failure(work, handler, failed.value, attempt=attempt)
            if delay_s is None:
                return
            await asyncio.sleep(delay_s)
            attempt += 1

    async def _attempt(
        self,
        todo: list[tuple[Work, Handler]],
        *,
        attempt: int,
        patience_s: float | None = None,
    ) -> list[Unfinished]:
        """One attempt of each handler, all at once; record the successes; return the rest.

        Calls still running after ``patience_s`` (``None``: no limit) are returned with
        their outcomes as futures.
        """
        if not todo:
            return []
        started_at = utc_now()
        calls, unfinished = await self._prepare(todo, started_at, attempt)
        outcomes = await call_user_code_many(
            [call for _, call in calls],
            timeout_s=self._timeout_s,
            threads=self._threads,
            patience_s=patience_s,
            slots=self._slots,
        )
        succeeded: list[tuple[Work, Handler]] = []
        try:
            for ((work, handler), _), outcome in zip(calls, outcomes, strict=True):
                if isinstance(outcome, Outcome):
                    if handler.after is not None:
                        outcome = await after_success(work, handler, outcome, attempt)
                    if outcome.ok:
                        succeeded.append((work, handler))
                        continue
                unfinished.append(Unfinished(work, handler, outcome))
        finally:
            # Even when cut short (the worker stopping): what succeeded must not run again.
            await self._record(succeeded, started_at=started_at)
        self._log_successes(succeeded, attempt=attempt, started_at=started_at)
        return unfinished

    async def _prepare(
        self, todo: list[tuple[Work, Handler]], started_at: datetime, attempt: int
    ) -> tuple[list[tuple[tuple[Work, Handler], UserCall]], list[Unfinished]]:
        """Each handler's call, its resources built; and the handlers whose resources
        failed."""
        calls: list[tuple[tuple[Work, Handler], UserCall]] = []
        unfinished: list[Unfinished] = []
        for work, handler in todo:
            event = work.event
            latency_s = (started_at - event.occurred_at).total_seconds()
            event_to_handler_start(handler_kind(handler.name)).observe(max(latency_s, 0))
            try:
                resources = (
                    await self._resources.build(handler, event_id=event.event_id, attempt=attempt)
                    if handler.resource_keys
                    else {}
                )
            except (HookExecutionError, CodeLocationError) as exc:
                unfinished.append(Unfinished(work, handler, Outcome(False, exc)))
                continue
            call = UserCall(  # positional: one per handler run
                handler.fn,
                handler.build_args(resources),
                handler.name,
                event.event_id,
                attempt,
                handler.kwargs,
            )
            calls.append(((work, handler), call))
        return calls, unfinished

    async def _after_failure(
        self, work: Work, handler: Handler, exc: Exception, *, attempt: int
    ) -> float | None:
        """Seconds before the next attempt (logged), or ``None``: it was dead-lettered."""
        delay_s = self.retry.delay_after(attempt, exc.__cause__)
        if delay_s is None:
            await self._give_up(work, handler, exc, attempt)
            return None
        self.retried += 1
        handler_runs(handler_kind(handler.name), "failed").inc()
        logger.warning(
            "handler failed handler=%s event_id=%s attempt=%d; retrying in %.2fs: %s",
            handler.name,
            work.event.event_id,
            attempt,
            delay_s,
            exc,
        )
        return delay_s

    async def _give_up(self, work: Work, handler: Handler, exc: Exception, attempts: int) -> None:
        self.failed += 1
        handler_runs(handler_kind(handler.name), "dead_lettered").inc()
        DEAD_LETTERS.labels("handler_failed").inc()
        await self._dead_letters.add(
            stream=work.stream,
            entry_id=work.entry_id,
            payload=encode_event(work.event),
            reason="handler_failed",
            error=str(exc),
            handler=handler.name,
            event_id=work.event.event_id,
            attempts=attempts,
        )

    async def _record(self, succeeded: list[tuple[Work, Handler]], *, started_at: datetime) -> None:
        # The side effects have happened: keep trying to record them while Redis is away,
        # since an unrecorded success would run again on redelivery.
        pairs = [(work.event.event_id, handler.name) for work, handler in succeeded]
        finished_at = utc_now()
        attempt = 1
        while pairs:
            try:
                await self._ledger.record_many(
                    pairs, consumer=self._consumer, started_at=started_at, finished_at=finished_at
                )
                return
            except redis.RedisError as exc:
                delay_s = self._reconnect.delay_s(attempt) or self._reconnect.max_s
                logger.warning(
                    "recording successes failed handlers=%d first=%s event_id=%s (%s); "
                    "retrying in %.2fs",
                    len(pairs),
                    pairs[0][1],
                    pairs[0][0],
                    type(exc).__name__,
                    delay_s,
                )
            await asyncio.sleep(delay_s)
            attempt += 1

    def _log_successes(
        self, succeeded: list[tuple[Work, Handler]], *, attempt: int, started_at: datetime
    ) -> None:
        """Count the handlers that succeeded (their calls ran together, so the duration is
        the whole batch's); a DEBUG line each.

        DEBUG, not INFO: at thousands of events a second a line per handler costs as much
        as the hooks themselves. Failures, retries and dead letters are WARNING lines, the
        worker logs its progress every minute (``sensors.upkeep.report_progress``), the
        counts are in the metrics and each success is in the ledger.
        """
        self.succeeded += len(succeeded)
        duration_s = (utc_now() - started_at).total_seconds()
        by_kind: dict[str, int] = {}
        for _, handler in succeeded:
            kind = handler_kind(handler.name)
            by_kind[kind] = by_kind.get(kind, 0) + 1
        for kind, count in by_kind.items():
            handler_duration(kind).observe(duration_s, count)
            handler_runs(kind, "succeeded").inc(count)
        if logger.isEnabledFor(logging.DEBUG):
            for work, handler in succeeded:
                event = work.event
                logger.debug(
                    "handler succeeded handler=%s event_id=%s run_id=%s state=%s attempt=%d "
                    "latency_ms=%.1f duration_ms=%.1f",
                    handler.name,
                    event.event_id,
                    event.run_id,
                    event_state(event),
                    attempt,
                    (started_at - event.occurred_at).total_seconds() * 1000,
                    duration_s * 1000,
                )
