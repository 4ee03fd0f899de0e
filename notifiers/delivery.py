"""Sending a rule's messages: the destinations' sinks, their rate limits, and the updates.

``notifiers.alerting.Alerting`` decides what a rule says and where in a run's thread;
``Delivery`` is how each message leaves the worker. It builds a destination's sink on first
use, holds a message back when the destination is over its ``max_per_minute`` (recorded as
rate_limited), calls the sink in a thread (sinks are synchronous), and edits a thread's
first message to show a new status line. Kept apart so the decisions read without the
mechanics of sending, and so every message goes through the one rate limit.
"""

from __future__ import annotations

import asyncio
import logging

from bus.events import BusEvent, CheckEvent
from bus.types import ResourceInitContext
from notifiers.destinations import Alert, AlertSink, Destination
from notifiers.format import SlackMessage, with_status_line
from notifiers.noise import NoiseControl
from notifiers.rules import NotificationRule
from notifiers.threads import AlertThread

logger = logging.getLogger(__name__)


class Delivery:
    """One worker's sinks, and the rate limit every message passes.

    Args:
        noise: the worker's noise control (the rate-limit counters, the suppressed log).
        context: the worker's environment and settings, for building sinks.
    """

    def __init__(self, noise: NoiseControl, *, context: ResourceInitContext) -> None:
        self._noise = noise
        self._context = context
        self._sinks: dict[str, AlertSink] = {}
        #: Messages sent since the worker started (updates are not counted).
        self.sent = 0

    def __repr__(self) -> str:
        return f"<Delivery sinks={self.sink_names()} sent={self.sent}>"

    def sink_names(self) -> list[str]:
        """The destinations whose sink was built, sorted."""
        return sorted(self._sinks)

    def sink(self, destination: Destination) -> AlertSink:
        """The destination's sink, built on first use with the worker's env and settings."""
        if destination.name not in self._sinks:
            self._sinks[destination.name] = destination.create_sink(self._context)
        return self._sinks[destination.name]

    async def send(
        self,
        rule: NotificationRule,
        destination: Destination,
        events: tuple[BusEvent, ...],
        message: SlackMessage,
        thread: AlertThread | None,
        *,
        limited: bool = True,
    ) -> tuple[bool, str | None]:
        """Send one message (in ``thread`` when there is one).

        Args:
            limited: whether the destination's rate limit may hold it back (default
                ``True``); a run's final state and a check alert are never held back.

        Returns:
            Whether it was sent (``False``: held back by the rate limit), and its id.
        """
        per_minute = destination.max_per_minute if limited else None
        if not await self._noise.allow(destination.name, per_minute=per_minute):
            await self._noise.record_suppressed(
                "rate_limited",
                rule=rule.name,
                destination=destination.name,
                event=events[0],
                detail=f"limit={per_minute}/min events={len(events)}",
            )
            return False, None
        sink = self.sink(destination)
        thread_ts = thread.ts if thread is not None and thread.ts and sink.threads else None
        alert = Alert(rule=rule.name, events=events, message=message)
        ts = await asyncio.to_thread(sink.deliver, alert, thread_ts=thread_ts)
        self.sent += 1
        logger.info(
            "alert sent rule=%s destination=%s run_id=%s events=%d thread_ts=%s",
            rule.name,
            destination.name,
            events[0].run_id or "-",
            len(events),
            thread_ts or "-",
        )
        return True, ts

    async def count_unlimited(self, destination: Destination, event: CheckEvent) -> None:
        """Count a check alert against the destination's rate limit, which never holds it
        back: a check fires once per occurrence, so a dropped one would never come again."""
        per_minute = destination.max_per_minute
        if not await self._noise.allow(destination.name, per_minute=per_minute):
            logger.warning(
                "check alert sent over the rate limit destination=%s limit=%s/min "
                "check=%s event_id=%s",
                destination.name,
                per_minute,
                event.check_name,
                event.event_id,
            )

    async def update(self, destination: Destination, thread: AlertThread, status: str) -> None:
        """Show ``status`` on top of the thread's first message (nothing without one)."""
        if not thread.ts:
            return
        sink = self.sink(destination)
        await asyncio.to_thread(sink.update, thread.ts, with_status_line(thread.message, status))
