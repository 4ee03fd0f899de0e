"""The sensor worker: reads events through consumer groups and runs hooks and sensors.

One asyncio loop per worker process. It holds one subscription for hooks (the shared
``hooks`` group) and one per sensor (each sensor its own group, so its own position and
lag). Each subscription's loop takes over entries that dead workers left pending
(``XAUTOCLAIM``), or reads new ones, and hands the batch to ``sensors.intake``: decode,
pick the handlers, run them through the dispatcher (retries, dead letters), then ack.
While an entry is held, it is refreshed (``XCLAIM JUSTID``) so no one takes it away.

Delivery is at least once; with the ledger (``bus.ledger``), effects are effectively once.
The windows left: a worker that dies after a hook's side effect and before the ledger
record runs that hook again when the entry is reclaimed; and two workers handling two
copies of one event at the same moment both run it (``docs/operations.md``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

import redis
import redis.asyncio as aioredis

from bus.backoff import Backoff
from bus.connection import connect, connect_async
from bus.consumer import Delivery
from bus.deadletter import DeadLetters
from bus.ledger import Ledger
from notifiers.alerting import Alerting
from sensors.check_runner import CheckRunner
from sensors.dispatch import Dispatcher
from sensors.hook_threads import HookThreads
from sensors.intake import Intake
from sensors.maintenance import maintenance_jobs
from sensors.registry import CodeLocation
from sensors.resources import ResourceBuilder
from sensors.run_requests import RunLauncher
from sensors.schedule import Periodic
from sensors.settings import WorkerSettings
from sensors.step_failures import StepFailures
from sensors.subscription import Subscription, subscriptions_for
from sensors.upkeep import cancel_all, heartbeat, keep_fresh, pause, report_progress, supervised

logger = logging.getLogger(__name__)

#: How long a sensor's stopped/started state is trusted before asking Redis again, in
#: seconds; also how often a stopped sensor's loop looks again.
SENSOR_STATE_TTL_S = 1.0


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
        self._client = client or connect_async(settings, kernel_liveness=True)
        self._keys = settings.keys
        self._reconnect = Backoff(base_s=0.05, max_s=settings.reconnect_max_s)
        self.threads = HookThreads(settings.concurrency, spare=settings.max_abandoned_threads)
        self._dead_letters = DeadLetters(self._client, keys=self._keys)
        self.dispatcher = Dispatcher(
            ledger=Ledger(self._client, keys=self._keys, ttl_s=settings.idempotency_ttl_s),
            dead_letters=self._dead_letters,
            resources=ResourceBuilder(
                location,
                env=env or {},
                timeout_s=settings.handler_timeout_s,
                settings=settings,
                threads=self.threads,
            ),
            consumer=settings.consumer_name,
            concurrency=settings.concurrency,
            timeout_s=settings.handler_timeout_s,
            threads=self.threads,
            retry=Backoff(
                base_s=settings.retry_base_s,
                max_s=settings.retry_max_s,
                max_attempts=settings.handler_max_attempts,
            ),
            reconnect=self._reconnect,
        )
        self.alerting = Alerting(self._client, keys=self._keys, settings=settings, env=env or {})
        # Unfinished sensors read a run's failed ops from their own thread (sync), on demand.
        self._sync_client = connect(settings)
        self.launcher = RunLauncher(
            self._client, keys=self._keys, module=location.module_name, env=env or {}
        )
        self.subscriptions = subscriptions_for(
            location,
            self._client,
            settings=settings,
            alerting=self.alerting,
            launcher=self.launcher,
            step_failures=StepFailures(self._sync_client, keys=self._keys),
        )
        # Publishes check events; their functions run as handlers, like hooks.
        self.checks = CheckRunner(
            self._client, keys=self._keys, checks=list(location.checks.values())
        )
        self.periodic = Periodic(
            self._client,
            keys=self._keys,
            owner=settings.consumer_name,
            jobs=maintenance_jobs(self._client, settings, checks=self.checks),
        )
        self._stopping = asyncio.Event()
        self.intake = Intake(
            self.dispatcher,
            self._dead_letters,
            max_in_flight=settings.max_in_flight,
            groups_per_stream=len({sub.group for sub in self.subscriptions}),
        )
        self._sensor_states: dict[str, tuple[float, bool]] = {}
        self._next_reclaim: dict[str, float] = {}
        self._needs_group: set[str] = set()

    def __repr__(self) -> str:
        return (
            f"<Worker consumer={self.settings.consumer_name!r} "
            f"location={self.location.module_name!r} "
            f"handled={self.handled} succeeded={self.dispatcher.succeeded} "
            f"retried={self.dispatcher.retried} failed={self.dispatcher.failed} "
            f"held={sum(sub.held_count for sub in self.subscriptions)}>"
        )

    async def start(self) -> None:
        """Create the consumer groups (idempotent), waiting for Redis if it is away, unless
        asked to stop meanwhile (a Ctrl-C that also stopped the Redis it waits for)."""
        attempt = 1
        while True:
            try:
                for subscription in self.subscriptions:
                    await subscription.consumer.ensure_group()
                break
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if self._stopping.is_set():
                    logger.info("stopping before Redis came back (%s)", type(exc).__name__)
                    return
                delay_s = self._reconnect.delay_s(attempt) or self._reconnect.max_s
                logger.warning(
                    "redis unavailable at start (%s); retrying in %.2fs",
                    type(exc).__name__,
                    delay_s,
                )
                await pause(self._stopping, delay_s)
                attempt += 1
        logger.info("worker ready %r", self)

    async def run(self) -> None:
        """Consume until ``stop()`` is called; then finish or hand back what it holds."""
        await self.start()
        reading = [asyncio.create_task(self._read(sub)) for sub in self.subscriptions]
        upkeep = [
            asyncio.create_task(heartbeat(self._client, self.settings, self.location.module_name)),
            asyncio.create_task(keep_fresh(self.subscriptions, self.settings)),
            asyncio.create_task(report_progress(self._progress)),
        ]
        self.periodic.start()
        await self._stopping.wait()
        await cancel_all(reading)
        await self._drain()
        await self.periodic.stop()
        await cancel_all(upkeep)  # the refresher kept held entries fresh while draining
        await self._ack_the_rest()
        await self._publish_read_marks()
        logger.info("worker stopped %r", self)

    def _progress(self) -> dict[str, int]:
        return {
            "entries": self.handled,
            "handlers_succeeded": self.dispatcher.succeeded,
            "retried": self.dispatcher.retried,
            "dead_lettered": self.dispatcher.failed,
        }

    @property
    def handled(self) -> int:
        """Entries handled to the end (their acks queued) since the worker started."""
        return self.intake.handled

    @property
    def stop_requested(self) -> bool:
        """Whether ``stop()`` was called."""
        return self._stopping.is_set()

    def stop(self) -> None:
        """Ask ``run`` to stop reading, finish what it holds (within the grace period), ack,
        and return."""
        self._stopping.set()

    async def run_until_idle(self) -> int:
        """Handle everything currently waiting, then return how many entries (tests, burst)."""
        await self.start()
        before = self.handled
        busy = True
        while busy:
            busy = False
            for subscription in self.subscriptions:
                if subscription.sensor and await self._sensor_stopped(subscription.sensor):
                    continue
                deliveries = await subscription.consumer.read(
                    count=self.settings.read_count, block_ms=None
                )
                await self.intake.hand_out(subscription, deliveries)
                busy = busy or bool(deliveries)
            while self.intake.tasks:  # retries of a batch start while it ends
                await asyncio.gather(*list(self.intake.tasks))
            for subscription in self.subscriptions:
                await subscription.flush_acks()
        return self.handled - before

    async def close(self) -> None:
        """Release the Redis connection and the thread pool."""
        await self._client.aclose()
        self._sync_client.close()
        self.threads.close()

    async def _read(self, subscription: Subscription) -> None:
        await supervised(
            lambda: self._consume(subscription),
            group=subscription.group,
            stopping=self._stopping,
            backoff=self._reconnect,
        )

    async def _consume(self, subscription: Subscription) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                deliveries = await self._next_batch(subscription)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise  # to ``supervised``: logged with its traceback, then restarted
                logger.warning(
                    "consumer group %s is gone (Redis restarted empty?); creating it again",
                    subscription.group,
                )
                self._needs_group.add(subscription.name)
                continue
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                failures += 1
                delay_s = self._reconnect.delay_s(failures) or self._reconnect.max_s
                logger.warning(
                    "redis unavailable group=%s (%s); reconnecting in %.2fs",
                    subscription.group,
                    type(exc).__name__,
                    delay_s,
                )
                await pause(self._stopping, delay_s)
                continue
            failures = 0
            started = await self.intake.hand_out(subscription, deliveries)
            # The next read waits for the batch to ask the ledger and start its calls: a
            # failure's check and hook then go first on the loop. Nothing is lost by it:
            # the loop is busy with the batch meanwhile.
            await started.wait()

    async def _next_batch(self, subscription: Subscription) -> list[Delivery]:
        """Entries dead workers left behind (when a sweep is due), else new entries."""
        if subscription.name in self._needs_group:
            await subscription.consumer.ensure_group()
            self._needs_group.discard(subscription.name)
        if subscription.sensor and await self._sensor_stopped(subscription.sensor):
            await pause(self._stopping, SENSOR_STATE_TTL_S)
            return []
        now = time.monotonic()
        if now >= self._next_reclaim.get(subscription.name, 0.0):
            self._next_reclaim[subscription.name] = now + self.settings.reclaim_interval_s
            reclaimed, exhausted = await subscription.reclaim(
                min_idle_ms=self.settings.claim_idle_ms,
                count=self.settings.read_count,
                max_deliveries=self.settings.max_deliveries,
            )
            await subscription.give_up_on(
                exhausted, self._dead_letters, max_deliveries=self.settings.max_deliveries
            )
            if reclaimed:
                return reclaimed
        # Finished entries' acks ride on the read (``Subscription.take_acks``).
        acks = subscription.take_acks()
        try:
            deliveries = await subscription.consumer.read(
                count=self.settings.read_count, block_ms=self.settings.block_ms, acks=acks
            )
        except BaseException:
            subscription.requeue_acks(acks)  # maybe not acked: the next flush sends them again
            raise
        subscription.acked(acks)
        return deliveries

    async def _drain(self) -> None:
        """Let running handlers finish within the grace period; hand back the rest."""
        if self.intake.tasks:
            logger.info(
                "finishing %d entries before stopping (grace %.1fs)",
                len(self.intake.tasks),
                self.settings.shutdown_grace_s,
            )
            deadline = time.monotonic() + self.settings.shutdown_grace_s
            # Batches may hand failed handlers to new retry tasks meanwhile: wait for those too.
            while self.intake.tasks and (left_s := deadline - time.monotonic()) > 0:
                await asyncio.wait(list(self.intake.tasks), timeout=left_s)
            await cancel_all(list(self.intake.tasks))

    async def _ack_the_rest(self) -> None:
        """Send every queued ack now: lingering flushes are cut short, and what one (or the
        cancelled refresher) was sending is queued again (``Subscription.flush_acks``)."""
        await cancel_all(sub.pending_flush for sub in self.subscriptions if sub.pending_flush)
        for subscription in self.subscriptions:
            await subscription.flush_acks()

    async def _publish_read_marks(self) -> None:
        """Publish what each consumer was given to its group's read mark: a running read
        loop does it with its next read, which a stopping one no longer sends."""
        for subscription in self.subscriptions:
            try:
                await subscription.consumer.publish_marks()
            except redis.RedisError as exc:
                logger.warning(
                    "read mark not published group=%s (%s); if the group is moved back "
                    "before its next read, this worker's last read can run its hooks again",
                    subscription.group,
                    type(exc).__name__,
                )

    async def _sensor_stopped(self, sensor: str) -> bool:
        now = time.monotonic()
        cached = self._sensor_states.get(sensor)
        if cached is not None and cached[0] > now:
            return cached[1]
        stopped = bool(await self._client.exists(self._keys.sensor_stopped(sensor)))
        if cached is not None and cached[1] != stopped:
            logger.info("sensor %s %s", sensor, "stopped" if stopped else "started")
        self._sensor_states[sensor] = (now + SENSOR_STATE_TTL_S, stopped)
        return stopped
