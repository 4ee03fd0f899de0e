"""One consumer group as the worker sees it: what it selects, holds, and has yet to ack.

The worker keeps, per group, the entries it holds (read or reclaimed, not yet acked) so
that it can refresh them (``Consumer.refresh``) while their handlers run, and the entries
it has finished, so that their acks go out together instead of one round trip each: with
the group's next read when one comes within ``ACK_LINGER_S`` (``take_acks``; the ``XACK``
then costs the event loop a third of a command of its own), else on their own
(``Consumer.ack_many``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import redis
import redis.asyncio as aioredis

from bus.consumer import Consumer, Delivery
from bus.deadletter import DeadLetters
from bus.events import BusEvent, RunEvent
from bus.keys import HOOKS_GROUP
from notifiers.alerting import Alerting
from notifiers.rules import NotificationRule
from sensors.handlers import Handler, MissingHook, hook_handlers, sensor_handler
from sensors.held_events import HeldEvents
from sensors.notifications import rule_handlers
from sensors.registry import CodeLocation
from sensors.run_requests import RunLauncher
from sensors.run_status import SensorDefinition
from sensors.settings import WorkerSettings
from sensors.step_failures import StepFailures

logger = logging.getLogger(__name__)

Selector = Callable[[BusEvent], tuple[list[Handler], list[MissingHook]]]

#: How long finished entries wait for the group's next read to carry their acks before
#: they are sent on their own, in seconds. Under load a read comes first; an idle group's
#: entries stay pending (held, still this worker's) that much longer.
ACK_LINGER_S = 0.05


class Subscription:
    """A consumer group and how it picks handlers for an event.

    Args:
        consumer: this worker's consumer in the group.
        select: the handlers an event triggers here, and the hooks it names that are
            missing.
        reports_poison: whether invalid entries are dead-lettered here. Only the hooks
            group does, so that an invalid entry is recorded once, not once per sensor.
        sensor: the sensor's name, for a sensor's group (it can be stopped and started).
        in_run_order: whether a run's events of a batch start in order: its first, then
            its others, then its end (a notification rule's group: the run's first
            failure leads its alerts, the end comes after them, not in a race).
        leads: whether its batches start before the other groups' batches read in the
            same turn of the loop (the hooks group: every group reads the same entries,
            and an op's failure hook is the alert most waited for).
        trusts_first_deliveries: whether a first delivery (``Delivery.first_delivery``)
            runs its handlers without asking the ledger first. Only the hooks group: it
            is created at ``$`` and nothing of ours moves it back, whereas ``hookbus
            sensors replay`` moves a sensor's group back, and its ledger check is what
            keeps such a replay from repeating what already ran. The check is 0.6-0.8 ms
            of a failure's path to its hook (docs/performance.md).
    """

    def __init__(
        self,
        consumer: Consumer,
        select: Selector,
        *,
        reports_poison: bool = False,
        sensor: str | None = None,
        in_run_order: bool = False,
        leads: bool = False,
        trusts_first_deliveries: bool = False,
    ) -> None:
        self.consumer = consumer
        self.leads = leads
        self.trusts_first_deliveries = trusts_first_deliveries
        self.select = select
        self.in_run_order = in_run_order
        self.reports_poison = reports_poison
        self.sensor = sensor
        #: Entries held (read, not yet acked): refreshed so no one else takes them.
        self.held: dict[str, set[str]] = {stream: set() for stream in consumer.streams}
        #: The events of the held entries whose handlers run: a copy read meanwhile waits.
        self.held_events = HeldEvents()
        #: Entries finished and waiting to be acked in the next batch.
        self.finished: dict[str, list[str]] = {stream: [] for stream in consumer.streams}
        #: The task acking finished entries, while one runs.
        self.pending_flush: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return (
            f"<Subscription group={self.consumer.group!r} held={self.held_count} "
            f"to_ack={sum(map(len, self.finished.values()))}>"
        )

    @property
    def group(self) -> str:
        return self.consumer.group

    @property
    def name(self) -> str:
        """The group and the stream(s) it reads: unique within a worker."""
        return f"{self.group}@{','.join(self.consumer.streams)}"

    @property
    def held_count(self) -> int:
        return sum(map(len, self.held.values()))

    def holds(self, delivery: Delivery) -> bool:
        return delivery.entry_id in self.held.get(delivery.stream, ())

    def hold(self, delivery: Delivery) -> None:
        self.held.setdefault(delivery.stream, set()).add(delivery.entry_id)

    def hold_all(self, deliveries: Sequence[Delivery]) -> None:
        """``hold`` each of ``deliveries`` (a read batch, usually of one stream)."""
        for stream, ids in _by_stream(deliveries).items():
            self.held.setdefault(stream, set()).update(ids)

    def release(self, delivery: Delivery) -> None:
        """Stop holding an entry without acking it: it stays pending, for a reclaim."""
        self.held.get(delivery.stream, set()).discard(delivery.entry_id)

    def finish(self, delivery: Delivery) -> None:
        """Queue an entry for the next ``flush_acks``."""
        self.finished.setdefault(delivery.stream, []).append(delivery.entry_id)

    def finish_all(self, deliveries: Sequence[Delivery]) -> None:
        """``finish`` each of ``deliveries``."""
        for stream, ids in _by_stream(deliveries).items():
            self.finished.setdefault(stream, []).extend(ids)

    async def refresh(self) -> None:
        """Tell the group the held entries are still being worked on."""
        held = {stream: list(ids) for stream, ids in self.held.items() if ids}
        if held:
            await self.consumer.refresh(held)

    def has_finished(self) -> bool:
        """Whether some finished entries wait for their ack."""
        return any(self.finished.values())

    async def flush_acks(self) -> bool:
        """Ack every finished entry in one round trip; keep them for later if Redis fails.

        Returns:
            False if Redis failed (the entries stay queued), else True.
        """
        batch = self.take_acks()
        if not batch:
            return True
        try:
            await self.consumer.ack_many(batch)
        except redis.RedisError as exc:
            self.requeue_acks(batch)
            logger.warning(
                "ack failed group=%s entries=%d (%s); will ack again on the next flush",
                self.group,
                sum(map(len, batch.values())),
                type(exc).__name__,
            )
            return False
        except asyncio.CancelledError:
            self.requeue_acks(batch)  # stopping: the last flush sends them (XACK is idempotent)
            raise
        self.acked(batch)
        return True

    def take_acks(self) -> dict[str, list[str]]:
        """The finished entries to ack now, taken off the queue: the caller sends them and
        then calls ``acked``, or ``requeue_acks`` if that failed."""
        batch = {stream: ids for stream, ids in self.finished.items() if ids}
        if batch:
            self.finished = {stream: [] for stream in self.finished}
        return batch

    def acked(self, batch: dict[str, list[str]]) -> None:
        """Redis has acked ``batch``: the entries are no longer held."""
        for stream, ids in batch.items():
            self.held.setdefault(stream, set()).difference_update(ids)

    def requeue_acks(self, batch: dict[str, list[str]]) -> None:
        """Sending ``batch`` failed (or may have): queue it again for the next flush."""
        for stream, ids in batch.items():
            self.finished.setdefault(stream, []).extend(ids)

    def flush_acks_soon(self) -> None:
        """Ack finished entries within ``ACK_LINGER_S``: with the group's next read if one
        comes first, else on their own (those finishing meanwhile share the round trip)."""
        if self.pending_flush is None or self.pending_flush.done():
            self.pending_flush = asyncio.create_task(self._flush_after_linger())

    async def _flush_after_linger(self) -> None:
        await asyncio.sleep(ACK_LINGER_S)
        while self.has_finished() and await self.flush_acks():
            pass

    async def reclaim(
        self, *, min_idle_ms: int, count: int, max_deliveries: int
    ) -> tuple[list[Delivery], list[Delivery]]:
        """Entries other consumers left idle for ``min_idle_ms``, now this worker's.

        Returns:
            The entries to run, and those already delivered ``max_deliveries`` times (each
            delivery ended with its worker dying: an entry that kills workers), which the
            caller dead-letters instead of running again.
        """
        found = await self.consumer.reclaim(min_idle_ms=min_idle_ms, count=count)
        gone = {stream: ids for stream, ids in found.gone.items() if ids}
        if gone:
            await self.consumer.ack_many(gone)
            logger.warning(
                "reclaimed entries no longer in the stream group=%s entries=%d; acked them",
                self.group,
                sum(map(len, gone.values())),
            )
        fresh = [delivery for delivery in found.deliveries if not self.holds(delivery)]
        if not fresh:
            return [], []
        logger.info(
            "reclaimed group=%s entries=%d left pending by a stopped consumer",
            self.group,
            len(fresh),
        )
        counts: dict[str, int] = {}
        for stream in {delivery.stream for delivery in fresh}:
            ids = [delivery.entry_id for delivery in fresh if delivery.stream == stream]
            counts.update(await self.consumer.delivery_counts(stream, ids))
        exhausted = [d for d in fresh if counts.get(d.entry_id, 0) > max_deliveries]
        return [d for d in fresh if d not in exhausted], exhausted

    async def give_up_on(
        self, exhausted: list[Delivery], dead_letters: DeadLetters, *, max_deliveries: int
    ) -> None:
        """Dead-letter entries whose every delivery ended with a dead (or failing) worker,
        then ack."""
        for delivery in exhausted:
            await dead_letters.add(
                stream=delivery.stream,
                entry_id=delivery.entry_id,
                payload=delivery.payload,
                reason="max_deliveries",
                error=f"delivered more than {max_deliveries} times to {self.group}; each "
                "time its worker died (or failed) before finishing it",
                handler=f"group:{self.group}",
                attempts=max_deliveries,
            )
            self.hold(delivery)
            self.finish(delivery)
        if exhausted:
            await self.flush_acks()


def subscriptions_for(
    location: CodeLocation,
    client: aioredis.Redis,
    *,
    settings: WorkerSettings,
    alerting: Alerting,
    launcher: RunLauncher | None = None,
    step_failures: StepFailures | None = None,
) -> list[Subscription]:
    """For each shard: one subscription for the hooks, one per sensor, one per rule.

    One subscription per shard (rather than one multi-stream read) keeps every read and
    pipeline within one Redis Cluster slot, and lets each shard's loop progress alone.
    """
    keys = settings.keys
    return [
        subscription
        for stream in keys.all_event_streams()
        for subscription in _subscriptions_on(
            stream, location, client, settings, alerting, (launcher, step_failures)
        )
    ]


def _subscriptions_on(
    stream: str,
    location: CodeLocation,
    client: aioredis.Redis,
    settings: WorkerSettings,
    alerting: Alerting,
    sensor_helpers: tuple[RunLauncher | None, StepFailures | None],
) -> list[Subscription]:
    keys = settings.keys
    launcher, step_failures = sensor_helpers

    def consumer(group: str, *, read_mark: bool = False) -> Consumer:
        return Consumer(
            client,
            streams=[stream],
            group=group,
            consumer=settings.consumer_name,
            read_mark=read_mark,
        )

    def sensor_subscription(sensor: SensorDefinition) -> Subscription:
        def select(event: BusEvent) -> tuple[list[Handler], list[MissingHook]]:
            if isinstance(event, RunEvent) and sensor.matches(event):
                return [sensor_handler(sensor, event, launcher, step_failures)], []
            return [], []

        return Subscription(consumer(keys.sensor_group(sensor.name)), select, sensor=sensor.name)

    def rule_subscription(rule: NotificationRule) -> Subscription:
        return Subscription(
            consumer(keys.rule_group(rule.name)),
            lambda event: (rule_handlers(alerting, rule, event), []),
            in_run_order=True,
        )

    hooks = Subscription(
        consumer(HOOKS_GROUP, read_mark=True),  # it trusts first deliveries
        lambda event: hook_handlers(event, location),
        reports_poison=True,
        leads=True,
        trusts_first_deliveries=True,
    )
    return (
        [hooks]
        + [sensor_subscription(sensor) for sensor in location.sensors.values()]
        + [rule_subscription(rule) for rule in location.rules.values()]
    )


def _by_stream(deliveries: Sequence[Delivery]) -> dict[str, list[str]]:
    """The entry ids of ``deliveries`` by stream, in order."""
    by_stream: dict[str, list[str]] = {}
    for delivery in deliveries:
        by_stream.setdefault(delivery.stream, []).append(delivery.entry_id)
    return by_stream
