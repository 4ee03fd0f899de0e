"""From a read batch to its acks: decode, pick the handlers, run them, settle each entry.

The worker's read loops hand each batch they read here (``Intake.hand_out``), which runs it
as one task: the entries are decoded (invalid ones dead-lettered), each subscription picks
its handlers, the dispatcher runs every first attempt together, and each entry is then
*settled*: queued for its ack, handed to a task of its own while some of its handlers
retry (or still run) or while it waits for its event's original entry (a copy,
``sensors.held_events``), or handed back (left pending, for a reclaim) when Redis fails, the
shutdown grace period ends, or a bug of ours gets in the way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import redis

from bus.consumer import Delivery
from bus.deadletter import DeadLetters
from bus.errors import EventValidationError
from bus.events import BusEvent
from sensors.capacity import Capacity
from sensors.decoded_events import DECODED_KEPT, DecodedEvents
from sensors.dispatch import Dispatcher
from sensors.handlers import MissingHook
from sensors.metrics import DEAD_LETTERS, events_consumed
from sensors.subscription import Subscription
from sensors.work import Unfinished, Work

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Leftovers:
    """What a batch's first attempts leave to tasks of their own."""

    #: Entries with handlers that failed or still run, and those handlers.
    retrying: dict[Delivery, list[Unfinished]] = field(default_factory=dict)
    #: Copies of events other held entries carry, and what settles those entries.
    copies: dict[Delivery, asyncio.Future[bool]] = field(default_factory=dict)


class Intake:
    """Handles read batches, holding at most ``max_in_flight`` entries at once.

    Args:
        dispatcher: runs the handlers.
        dead_letters: where invalid entries and unknown hooks go.
        max_in_flight: entries held at once; reading waits beyond it.
        groups_per_stream: how many of the worker's consumer groups read each stream
            (decoded events are kept for the others only when there are others).
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        dead_letters: DeadLetters,
        *,
        max_in_flight: int,
        groups_per_stream: int = 2,
    ) -> None:
        self._dispatcher = dispatcher
        self._dead_letters = dead_letters
        self._decoded = DecodedEvents(DECODED_KEPT if groups_per_stream > 1 else 0)
        self._capacity = Capacity(max_in_flight)
        self._taking = asyncio.Lock()  # one batch takes its slots at a time
        #: The batches and follow-ups running now.
        self.tasks: set[asyncio.Task[None]] = set()
        #: Entries settled as finished (queued for their ack).
        self.handled = 0

    def __repr__(self) -> str:
        return f"<Intake tasks={len(self.tasks)} handled={self.handled}>"

    @property
    def free_slots(self) -> int:
        """Entries it may take on before reading waits (``max_in_flight`` when idle)."""
        return self._capacity.free

    async def hand_out(
        self, subscription: Subscription, deliveries: list[Delivery]
    ) -> asyncio.Event:
        """Start one task for the batch, waiting while ``max_in_flight`` entries are held.

        A batch takes its slots as a whole, one batch at a time: read loops taking slots
        one by one in turn could each end up with part of what they need and none with
        all of it, every entry held and refreshed, and nothing left running to free one.

        Returns:
            Set once the batch has asked the ledger and its first calls start (or it ended
            before): the read loop sends its next read only then, so that a failure's
            ledger check and hook start are not queued behind that read on the loop.
        """
        started = asyncio.Event()
        if not deliveries:
            started.set()
            return started
        subscription.hold_all(deliveries)  # refreshed while it waits: no one else takes it
        try:
            async with self._taking:
                await self._capacity.take(len(deliveries))
        except BaseException:  # stopping (or a batch larger than the budget): nothing taken
            for delivery in deliveries:
                subscription.release(delivery)
            raise
        self._track(self._handle(subscription, deliveries, started))
        return started

    def _track(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _handle(
        self,
        subscription: Subscription,
        deliveries: list[Delivery],
        started: asyncio.Event,
    ) -> None:
        """Handle a batch: each entry is queued for its ack, handed to a task retrying its
        failed handlers (or, for a copy, waiting for its original), or handed back (left
        pending for a reclaim). ``started`` is set once the batch has asked the ledger, or
        ended before, or hit a bug of ours."""
        settled: set[Delivery] = set()  # acked, handed back, or now another task's
        consumed = 0
        try:
            if not subscription.leads:
                # One turn of the loop: a leading group's batch read in this turn (the
                # same entries) decodes them and sends its ledger check first, and this
                # batch's work then overlaps that round trip instead of delaying it.
                await asyncio.sleep(0)
            left = await self.process(subscription, deliveries, started=started)
            finished = self._hand_on(subscription, deliveries, left, settled)
            self._settle_finished(subscription, finished, settled)
            consumed = len(finished)
        except redis.RedisError as exc:
            logger.warning(
                "redis failed while handling entries=%d group=%s (%s); left pending for a reclaim",
                len(deliveries),
                subscription.group,
                type(exc).__name__,
            )
        except asyncio.CancelledError:
            logger.warning(
                "handing back entries=%d group=%s: the shutdown grace period is over",
                len(deliveries) - len(settled),
                subscription.group,
            )
            raise
        except Exception:
            # A bug of ours (user code's errors are handled by the dispatcher). Handling
            # the entries one by one may take a while: the read loop need not wait for it.
            started.set()
            await self._isolate_bug(subscription, deliveries, settled)
        finally:
            started.set()  # also when it failed before asking the ledger
            for delivery in deliveries:
                if delivery not in settled:
                    self._settle(subscription, delivery, settled, finished=False)
            subscription.flush_acks_soon()
            if consumed:  # counted per batch: a labelled counter's ``inc`` takes a lock
                events_consumed(subscription.group).inc(consumed)

    def _hand_on(
        self,
        subscription: Subscription,
        deliveries: list[Delivery],
        left: Leftovers,
        settled: set[Delivery],
    ) -> list[Delivery]:
        """Start a task for each entry ``left`` names (settled by it from then on); return
        the rest of ``deliveries``, finished."""
        if not (left.retrying or left.copies):
            return deliveries
        for delivery, unfinished in left.retrying.items():
            self._track(self._follow_up(subscription, delivery, unfinished))
            settled.add(delivery)
        for delivery, original in left.copies.items():
            self._track(self._follow_original(subscription, delivery, original))
            settled.add(delivery)
        return [delivery for delivery in deliveries if delivery not in settled]

    async def _isolate_bug(
        self, subscription: Subscription, deliveries: list[Delivery], settled: set[Delivery]
    ) -> None:
        """After a bug of ours failed a batch: hand back only the entries that trigger it.

        A lone entry is handed back (reclaimed later and, after ``max_deliveries``,
        dead-lettered); a batch is handled again one entry at a time, so that one bad entry
        does not take its batch-mates to the dead letters with it.
        """
        if len(deliveries) == 1:
            logger.exception(
                "handling failed entry=%s group=%s; left pending for a reclaim",
                deliveries[0].entry_id,
                subscription.group,
            )
            return
        logger.warning(
            "handling a batch failed entries=%d group=%s; handling them one at a time",
            len(deliveries),
            subscription.group,
        )
        for delivery in deliveries:
            delivery.first_delivery = False  # some of its handlers may have run: ask the ledger
            if delivery not in settled:
                settled.add(delivery)  # from here on, its own ``_handle`` settles it
                await self._handle(subscription, [delivery], asyncio.Event())

    async def _follow_up(
        self, subscription: Subscription, delivery: Delivery, unfinished: list[Unfinished]
    ) -> None:
        """Go on with the handlers of one entry that failed their first attempt or still run."""
        settled: set[Delivery] = set()
        finished = False
        try:
            results = await asyncio.gather(
                *(self._dispatcher.finish(handler) for handler in unfinished),
                return_exceptions=True,  # each goes to its end, whatever a sibling does
            )
            errors = [result for result in results if isinstance(result, BaseException)]
            if errors:
                raise errors[0]
            finished = True
        except redis.RedisError as exc:
            logger.warning(
                "redis failed while finishing entry=%s group=%s (%s); left pending for a reclaim",
                delivery.entry_id,
                subscription.group,
                type(exc).__name__,
            )
        except Exception:
            logger.exception(  # a bug of ours: the entry is reclaimed, then dead-lettered
                "finishing failed entry=%s group=%s; left pending for a reclaim",
                delivery.entry_id,
                subscription.group,
            )
        finally:
            self._settle(subscription, delivery, settled, finished=finished)
            subscription.flush_acks_soon()
            if finished:
                events_consumed(subscription.group).inc()

    async def _follow_original(
        self, subscription: Subscription, delivery: Delivery, original: asyncio.Future[bool]
    ) -> None:
        """A copy of an event whose handlers another held entry runs: once that entry is
        finished, handled as a redelivery (the ledger skips what the original recorded, so
        only what it dead-lettered runs again: a replay's purpose); handed back (for a
        reclaim) if the original is, or if the worker stops meanwhile."""
        finished = False
        try:
            finished = await asyncio.shield(original)  # shared with the event's other copies
        finally:
            if not finished:  # handed back, or the worker stops
                self._settle(subscription, delivery, set(), finished=False)
                logger.info(
                    "handed back a copy of an event with its original entry=%s group=%s",
                    delivery.entry_id,
                    subscription.group,
                )
        if not finished:
            return
        delivery.first_delivery = False  # the original's hooks ran: ask the ledger
        await self._handle(subscription, [delivery], asyncio.Event())  # settles it

    def _settle_finished(
        self, subscription: Subscription, deliveries: list[Delivery], settled: set[Delivery]
    ) -> None:
        """Queue the acks of entries whose handlers all finished; free their slots."""
        subscription.held_events.settle(deliveries, finished=True)
        subscription.finish_all(deliveries)
        settled.update(deliveries)
        self.handled += len(deliveries)
        self._capacity.give(len(deliveries))

    def _settle(
        self,
        subscription: Subscription,
        delivery: Delivery,
        settled: set[Delivery],
        *,
        finished: bool,
    ) -> None:
        """Queue the entry's ack (``finished``) or hand it back for a reclaim; free its slot."""
        if finished:
            self._settle_finished(subscription, [delivery], settled)
            return
        subscription.held_events.settle([delivery], finished=False)
        subscription.release(delivery)
        settled.add(delivery)
        self._capacity.give()

    async def process(
        self,
        subscription: Subscription,
        deliveries: list[Delivery],
        *,
        started: asyncio.Event | None = None,
    ) -> Leftovers:
        """Decode a batch and run its handlers' first attempts; dead-letter what is invalid.

        An entry whose event another held entry of the group carries (a copy: a replay, say)
        runs nothing: it waits for that entry (``HeldEvents``).

        ``started`` is set once the ledger has answered for the batch (its calls start).

        Returns:
            The entries with handlers left unfinished (failed, or still running), with those
            handlers; and the copies, with what their originals' settling is awaited by.
        """
        batch: list[Work] = []
        left = Leftovers()
        held_events = subscription.held_events
        for delivery in deliveries:
            try:
                event = self._decoded.event(delivery)
            except EventValidationError as exc:
                if subscription.reports_poison:
                    DEAD_LETTERS.labels(exc.reason).inc()
                    await self._dead_letters.add(
                        stream=delivery.stream,
                        entry_id=delivery.entry_id,
                        payload=delivery.payload,
                        reason=exc.reason,
                        error=exc.detail,
                    )
                continue
            handlers, missing = subscription.select(event)
            if not (handlers or missing):
                continue
            original = held_events.claim(event.event_id, delivery)
            if original is not None:  # a copy: nothing runs, nothing is dead-lettered yet
                left.copies[delivery] = original
                continue
            if missing:
                await self._dead_letter_missing(delivery, event, missing)
            if handlers:
                check = not (delivery.first_delivery and subscription.trusts_first_deliveries)
                batch.append(Work(event, handlers, delivery.stream, delivery.entry_id, check))
        unfinished = await self._dispatcher.first_attempts(
            batch, ends_last=subscription.in_run_order, checked=started
        )
        by_entry = {(d.stream, d.entry_id): d for d in deliveries} if unfinished else {}
        for failure in unfinished:
            entry = by_entry[failure.work.stream, failure.work.entry_id]
            left.retrying.setdefault(entry, []).append(failure)
        return left

    async def _dead_letter_missing(
        self, delivery: Delivery, event: BusEvent, missing: list[MissingHook]
    ) -> None:
        """Dead-letter the hooks ``event`` names that this code location lacks."""
        for hook in missing:
            DEAD_LETTERS.labels("unknown_hook").inc()
            await self._dead_letters.add(
                stream=delivery.stream,
                entry_id=delivery.entry_id,
                payload=delivery.payload,
                reason="unknown_hook",
                error=str(hook.error),
                handler=hook.name,
                event_id=event.event_id,
            )
