"""The sensor worker: reads events through consumer groups and runs hooks and sensors.

One asyncio loop per worker process. It holds one subscription for hooks (the shared
``hooks`` group) and one per sensor (each sensor its own group, so its own position and
lag). For each entry: decode it, pick the handlers, run them through the dispatcher, ack.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import redis
import redis.asyncio as aioredis

from bus.connection import connect_async
from bus.consumer import Consumer, Delivery
from bus.deadletter import DeadLetters
from bus.errors import EventValidationError
from bus.events import OpEvent, RunEvent, decode_event
from bus.keys import HOOKS_GROUP
from bus.ledger import Ledger
from sensors.dispatch import Dispatcher
from sensors.handlers import Handler, MissingHook, hook_handlers, sensor_handler
from sensors.registry import CodeLocation
from sensors.resources import ResourceBuilder
from sensors.run_status import SensorDefinition
from sensors.settings import WorkerSettings

logger = logging.getLogger(__name__)

#: How long to wait before reading again after Redis failed, in seconds.
RECONNECT_DELAY_S = 1.0


@dataclass(frozen=True, slots=True)
class Subscription:
    """A consumer group and how it picks handlers for an event."""

    consumer: Consumer
    #: The handlers an event triggers here, and the hooks it names that are missing.
    select: Callable[[RunEvent | OpEvent], tuple[list[Handler], list[MissingHook]]]
    #: Whether this subscription dead-letters invalid entries. Only the hooks group does,
    #: so that an invalid entry is recorded once, not once per sensor.
    reports_poison: bool = False


class Worker:
    """Runs the hooks and sensors of one code location for every event on the bus.

    Args:
        location: the loaded code location.
        settings: the worker's settings.
        env: the process environment captured at startup (for ``EnvVar`` resources).
        client: an asyncio Redis client (default: one from ``settings``).
    """

    def __init__(
        self,
        location: CodeLocation,
        settings: WorkerSettings,
        *,
        env: Mapping[str, str] | None = None,
        client: aioredis.Redis | None = None,
    ) -> None:
        self.location = location
        self.settings = settings
        self._client = client or connect_async(settings)
        self._keys = settings.keys
        self._executor = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="hookbus-hook")
        self._dead_letters = DeadLetters(self._client, keys=self._keys)
        self.dispatcher = Dispatcher(
            ledger=Ledger(self._client, keys=self._keys, ttl_s=settings.idempotency_ttl_s),
            dead_letters=self._dead_letters,
            resources=ResourceBuilder(
                location, env=env or {}, timeout_s=settings.handler_timeout_s
            ),
            consumer=settings.consumer_name,
            concurrency=settings.concurrency,
            timeout_s=settings.handler_timeout_s,
            executor=self._executor,
        )
        self.subscriptions = [self._hooks_subscription()] + [
            self._sensor_subscription(sensor) for sensor in location.sensors.values()
        ]
        self._stopping = asyncio.Event()
        self.handled = 0

    def __repr__(self) -> str:
        return (
            f"<Worker consumer={self.settings.consumer_name!r} "
            f"location={self.location.module_name!r} "
            f"handled={self.handled} succeeded={self.dispatcher.succeeded} "
            f"failed={self.dispatcher.failed}>"
        )

    def _hooks_subscription(self) -> Subscription:
        return Subscription(
            consumer=self._consumer(HOOKS_GROUP),
            select=lambda event: hook_handlers(event, self.location),
            reports_poison=True,
        )

    def _sensor_subscription(self, sensor: SensorDefinition) -> Subscription:
        def select(event: RunEvent | OpEvent) -> tuple[list[Handler], list[MissingHook]]:
            if isinstance(event, RunEvent) and sensor.matches(event):
                return [sensor_handler(sensor, event)], []
            return [], []

        return Subscription(
            consumer=self._consumer(self._keys.sensor_group(sensor.name)), select=select
        )

    def _consumer(self, group: str) -> Consumer:
        return Consumer(
            self._client,
            streams=self._keys.all_event_streams(),
            group=group,
            consumer=self.settings.consumer_name,
        )

    async def start(self) -> None:
        """Create the consumer groups (idempotent)."""
        for subscription in self.subscriptions:
            await subscription.consumer.ensure_group()
        logger.info("worker ready %r", self)

    async def run(self) -> None:
        """Consume until ``stop()`` is called; then return."""
        await self.start()
        tasks = [asyncio.create_task(self._consume(sub)) for sub in self.subscriptions]
        tasks.append(asyncio.create_task(self._heartbeat()))
        await self._stopping.wait()
        await asyncio.gather(*tasks, return_exceptions=True)
        logger.info("worker stopped %r", self)

    def stop(self) -> None:
        """Ask ``run`` to finish what it holds and return."""
        self._stopping.set()

    async def run_until_idle(self) -> int:
        """Handle everything currently waiting, then return how many entries (tests, burst)."""
        await self.start()
        before = self.handled
        busy = True
        while busy:
            busy = False
            for subscription in self.subscriptions:
                deliveries = await subscription.consumer.read(
                    count=self.settings.read_count, block_ms=None
                )
                await self._process_all(subscription, deliveries)
                busy = busy or bool(deliveries)
        return self.handled - before

    async def close(self) -> None:
        """Release the Redis connection and the thread pool."""
        await self._client.aclose()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _consume(self, subscription: Subscription) -> None:
        while not self._stopping.is_set():
            try:
                deliveries = await subscription.consumer.read(
                    count=self.settings.read_count, block_ms=self.settings.block_ms
                )
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                logger.warning(
                    "redis unavailable group=%s (%s); retrying in %.1fs",
                    subscription.consumer.group,
                    type(exc).__name__,
                    RECONNECT_DELAY_S,
                )
                await asyncio.sleep(RECONNECT_DELAY_S)
                continue
            await self._process_all(subscription, deliveries)

    async def _process_all(self, subscription: Subscription, deliveries: list[Delivery]) -> None:
        await asyncio.gather(*(self.process(subscription, delivery) for delivery in deliveries))

    async def process(self, subscription: Subscription, delivery: Delivery) -> None:
        """Decode one entry, run its handlers, and ack it; dead-letter what is invalid."""
        try:
            event = _decode(delivery)
        except EventValidationError as exc:
            if subscription.reports_poison:
                await self._dead_letters.add(
                    stream=delivery.stream,
                    entry_id=delivery.entry_id,
                    payload=delivery.payload,
                    reason=exc.reason,
                    error=exc.detail,
                )
        else:
            await self._run(subscription, delivery, event)
        await subscription.consumer.ack(delivery)
        self.handled += 1

    async def _run(
        self, subscription: Subscription, delivery: Delivery, event: RunEvent | OpEvent
    ) -> None:
        handlers, missing = subscription.select(event)
        for hook in missing:
            await self._dead_letters.add(
                stream=delivery.stream,
                entry_id=delivery.entry_id,
                payload=delivery.payload,
                reason="unknown_hook",
                error=str(hook.error),
                handler=hook.name,
                event_id=event.event_id,
            )
        await self.dispatcher.run_handlers(
            event, handlers, stream=delivery.stream, entry_id=delivery.entry_id
        )

    async def _heartbeat(self) -> None:
        key = self._keys.worker_heartbeat(self.settings.consumer_name)
        ttl_s = max(1, int(self.settings.heartbeat_interval_s * 3))
        while not self._stopping.is_set():
            try:
                await self._client.set(key, self.location.module_name, ex=ttl_s)
            except redis.RedisError as exc:
                logger.warning("worker heartbeat failed (%s); retrying", type(exc).__name__)
            try:
                await asyncio.wait_for(
                    self._stopping.wait(), timeout=self.settings.heartbeat_interval_s
                )
            except TimeoutError:
                pass


def _decode(delivery: Delivery) -> RunEvent | OpEvent:
    if delivery.payload is None:
        raise EventValidationError(
            "missing_event_field", f"entry {delivery.entry_id} has no 'event' field"
        )
    return decode_event(delivery.payload)
