"""Deciding what a notification rule sends in a worker: threads, silences, dedupe, bursts.

``Alerting.handle(rule, destination, event)`` is what a rule's consumer group calls for
each (event, destination). What happens, in order:

1. The alert for this event already reached this destination (a retry): nothing.
2. A run ended and this destination has a thread for it (or an op failure of the run is
   being sent as its first message: the end waits for it): collected failures still
   waiting are sent, then the final state (failed, crashed, or completed = recovered) is
   posted in the thread and the first message is updated to show it. Done. The run's own
   failed/crashed event is its final state, never one more failure in a burst; only op
   failures are counted. A run that failed with nothing alerted is one message.
3. The rule does not match: nothing. A silence matches: recorded as silenced. The same
   failure was sent within the dedupe window: recorded as duplicate.
4. **Bursts.** The first failure of a run opens a grouping window and is sent at once: at
   the top of the channel as the run's first message, or in its thread. Failures that
   arrive while the window is open are collected in Redis (recorded as grouped). When the
   window closes, the first failure's handler sends everything collected as **one**
   message in the thread (count and list) and updates the first message with the count.
   So 50 ops failing within a second make one channel message, one grouped reply, and the
   run's final state in the thread — not 50 messages. If that worker dies while waiting,
   the run's end (step 2) sends what was collected.
5. A destination over its rate limit holds the message back (recorded as rate_limited).
   Sending itself (sinks, that rate limit, updating the first message) is
   ``notifiers.delivery.Delivery``: this module decides what is sent, and where.

A check event (``Alerting.handle_check``) takes a shorter path: already sent, rule match,
silences, then one message (``notifiers.check_format.check_message``) — in the run's
thread when a stuck run has one. No dedupe or grouping: a check fires once per occurrence
by itself. For the same reason the rate limit never holds a check alert back (a dropped
one would never be sent again): it is counted against the destination's limit, so the
failure alerts after it share the budget, and one sent over the limit is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Final, TypeGuard

import redis.asyncio as aioredis

from bus.events import BusEvent, CheckEvent, OpEvent, RunEvent
from bus.keys import Keys
from bus.lease import Lease
from bus.types import ResourceInitContext
from notifiers.check_format import check_message
from notifiers.delivery import Delivery
from notifiers.destinations import AlertSink, Destination
from notifiers.format import (
    alert_message,
    final_state_message,
    final_status_line,
    group_message,
    running_status_line,
)
from notifiers.noise import NoiseControl
from notifiers.rules import NotificationRule
from notifiers.settings import NotifierSettings
from notifiers.silences import SilenceStore
from notifiers.threads import AlertThread, ThreadStore

#: How often to look again while waiting for a burst's first alert or its flush (seconds).
POLL_S: Final = 0.05
#: A run's end waits at most the grouping window plus this for its first alert (seconds).
END_WAIT_MARGIN_S: Final = 5.0
#: The flush lease lasts this long (milliseconds): longer than a Slack call with retries.
FLUSH_LEASE_MS: Final = 30_000


class Alerting:
    """The notification rules' runtime in one worker.

    Args:
        client: an asyncio Redis client (thread and noise-control state).
        keys: key names.
        settings: the worker's notifier settings (Slack base URL, "View run" base URL).
        env: the worker's environment, for the destinations' ``EnvVar`` secrets.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        keys: Keys,
        settings: NotifierSettings,
        env: Mapping[str, str],
    ) -> None:
        self._settings = settings
        self.noise = NoiseControl(client, keys=keys)
        self.silences = SilenceStore(client, keys=keys)
        self._delivery = Delivery(
            self.noise, context=ResourceInitContext(env=env, settings=settings)
        )
        self._client = client
        self._keys = keys

    def __repr__(self) -> str:
        return f"<Alerting sinks={self._delivery.sink_names()} sent={self.sent}>"

    @property
    def sent(self) -> int:
        """Messages sent since the worker started."""
        return self._delivery.sent

    def sink(self, destination: Destination) -> AlertSink:
        """The destination's sink, built on first use with the worker's env and settings."""
        return self._delivery.sink(destination)

    def _threads(self, rule: NotificationRule) -> ThreadStore:
        return ThreadStore(self._client, keys=self._keys, ttl_s=rule.thread_ttl_s)

    async def handle(
        self, rule: NotificationRule, destination: Destination, event: RunEvent | OpEvent
    ) -> None:
        """Alert ``destination`` about ``event`` under ``rule`` (see the module docstring).

        Raises:
            PermanentNotifierError: the destination refused for good (not retried).
            TransientNotifierError: the destination is unavailable; retry later.
        """
        if await self._threads(rule).already_sent(destination.name, event.event_id):
            return
        if _ends_run(event) and rule.group_by == "run":
            await self._end_run(rule, destination, event)
            return
        if _ends_run(event):
            thread = await self._thread_at_end(rule, destination, event)
            if thread is not None:
                await self._close_thread(rule, destination, event, thread)
                return
        if not rule.matches(event) or await self._held_back(rule, destination, event):
            return
        group_id = rule.group_id(event)
        leads = await self.noise.join_group(
            rule.name, destination.name, group_id, event, window_s=rule.group_window_s
        )
        if not leads:
            await self.noise.record_suppressed(
                "grouped", rule=rule.name, destination=destination.name, event=event
            )
            return
        await self._lead(rule, destination, event, group_id)

    async def _end_run(
        self, rule: NotificationRule, destination: Destination, event: RunEvent
    ) -> None:
        """A run's end (bursts grouped per run): the run's final state, never one more failure.

        When an op failure of the run leads its burst, that failure is (being) sent as the
        run's first message: the end waits for it and closes the thread. When nothing was
        alerted, the end is the run's one alert; it leads the burst, so an op failure
        handled meanwhile is collected and sent in its thread, then the final state.
        """
        group_id = rule.group_id(event)
        leads = await self.noise.join_group(
            rule.name,
            destination.name,
            group_id,
            event,
            window_s=rule.group_window_s,
            collect=False,
        )
        threads = self._threads(rule)
        if leads:
            thread = await threads.get(destination.name, event.run_id)
        else:
            thread = await self._thread_at_end(rule, destination, event)
        if thread is not None:
            await self._close_thread(rule, destination, event, thread)
            return
        send = rule.matches(event) and not await self._held_back(rule, destination, event)
        await self._lead(rule, destination, event, group_id, send=send)

    async def _lead(
        self,
        rule: NotificationRule,
        destination: Destination,
        event: RunEvent | OpEvent,
        group_id: str,
        *,
        send: bool = True,
    ) -> None:
        """Send the burst's first alert at once; when its window closes, what it collected."""
        if send:
            async with self._one_at_a_time(
                rule, destination, f"run:{event.run_id}", owner=event.event_id
            ):
                await self._send_first(rule, destination, event)
        if rule.group_window_s <= 0:
            return
        await asyncio.sleep(rule.group_window_s)
        async with self._one_at_a_time(rule, destination, group_id, owner=event.event_id):
            flushed = await self._flush(rule, destination, group_id, run_id=event.run_id)
            if flushed and _ends_run(event):
                # Failures sent after the run's end: the end is repeated below them.
                await self._post_final(rule, destination, event)

    async def handle_check(
        self, rule: NotificationRule, destination: Destination, event: CheckEvent
    ) -> None:
        """Alert ``destination`` about a time-based check's event under ``rule``.

        Raises:
            PermanentNotifierError: the destination refused for good (not retried).
            TransientNotifierError: the destination is unavailable; retry later.
        """
        threads = self._threads(rule)
        if await threads.already_sent(destination.name, event.event_id):
            return
        if not rule.matches(event):
            return
        if await self._silenced(rule, destination, event):
            return
        run_id = event.run_id
        thread = None if run_id is None else await threads.get(destination.name, run_id)
        message = check_message(event, webserver_base_url=self._settings.webserver_base_url)
        await self._delivery.count_unlimited(destination, event)
        _, ts = await self._delivery.send(
            rule, destination, (event,), message, thread, limited=False
        )
        if run_id is not None and thread is None:
            # The stuck run's first alert: its end (or failures) will follow in this thread.
            await threads.open(destination.name, run_id, ts=ts or "", message=message, failures=0)
        await threads.mark_sent(destination.name, event.event_id)

    async def _thread_at_end(
        self, rule: NotificationRule, destination: Destination, event: RunEvent
    ) -> AlertThread | None:
        """The run's thread; while the run's first alert is still being sent, wait for it."""
        threads = self._threads(rule)
        deadline = asyncio.get_running_loop().time() + rule.group_window_s + END_WAIT_MARGIN_S
        group_id = rule.group_id(event)
        while (thread := await threads.get(destination.name, event.run_id)) is None:
            still_open = await self.noise.group_open_ms(rule.name, destination.name, group_id)
            if not still_open or asyncio.get_running_loop().time() > deadline:
                return None
            await asyncio.sleep(POLL_S)
        return thread

    @contextlib.asynccontextmanager
    async def _one_at_a_time(
        self, rule: NotificationRule, destination: Destination, group_id: str, *, owner: str
    ) -> AsyncIterator[None]:
        """Serialise a burst's flush and the run's end across workers (a Redis lease), so
        the grouped message and the final state arrive in that order."""
        name = f"notify:{rule.name}:{destination.name}:{group_id}"
        lease = Lease(self._client, key=self._keys.lease(name), owner=owner, ttl_ms=FLUSH_LEASE_MS)
        deadline = asyncio.get_running_loop().time() + FLUSH_LEASE_MS / 1000
        # Past the deadline the holder is presumed stuck: better out of order than never.
        while not await lease.acquire() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(POLL_S)
        try:
            yield
        finally:
            await lease.release()

    async def _silenced(
        self, rule: NotificationRule, destination: Destination, event: BusEvent
    ) -> bool:
        """Whether a silence covers ``event`` (then recorded as suppressed)."""
        silence = await self.silences.matching(event, rule=rule.name)
        if silence is None:
            return False
        await self.noise.record_suppressed(
            "silenced",
            rule=rule.name,
            destination=destination.name,
            event=event,
            detail=f"silence={silence.id}",
        )
        return True

    async def _held_back(
        self, rule: NotificationRule, destination: Destination, event: RunEvent | OpEvent
    ) -> bool:
        if await self._silenced(rule, destination, event):
            return True
        window_s = rule.dedupe_window_s
        if not await self.noise.first_in_window(
            rule.name, destination.name, event, window_s=window_s
        ):
            await self.noise.record_suppressed(
                "duplicate", rule=rule.name, destination=destination.name, event=event
            )
            return True
        return False

    async def _send_first(
        self, rule: NotificationRule, destination: Destination, event: RunEvent | OpEvent
    ) -> None:
        threads = self._threads(rule)
        thread = await threads.get(destination.name, event.run_id)
        if thread is not None and _ends_run(event):
            # An op failure opened the thread meanwhile (no burst window to order them).
            await self._post_final(rule, destination, event, thread)
            await threads.mark_sent(destination.name, event.event_id)
            return
        message = alert_message(event, webserver_base_url=self._settings.webserver_base_url)
        sent, ts = await self._delivery.send(rule, destination, (event,), message, thread)
        # Only failures count: a run's end is its final state, not one more failure.
        failures = 0 if _ends_run(event) else 1
        if sent and thread is None:
            await threads.open(
                destination.name, event.run_id, ts=ts or "", message=message, failures=failures
            )
        elif sent and failures:
            await threads.add_failures(destination.name, event.run_id, failures)
        await threads.mark_sent(destination.name, event.event_id)

    async def _flush(
        self, rule: NotificationRule, destination: Destination, group_id: str, *, run_id: str
    ) -> int:
        """Send what a burst collected as one message in the run's thread; return how many."""
        events = await self.noise.drain_group(rule.name, destination.name, group_id)
        if not events:
            return 0
        threads = self._threads(rule)
        thread = await threads.get(destination.name, run_id)
        total = (thread.failures if thread else 0) + len(events)
        message = group_message(
            events, total=total, webserver_base_url=self._settings.webserver_base_url
        )
        sent, _ts = await self._delivery.send(rule, destination, tuple(events), message, thread)
        if not sent:
            return 0
        if thread is not None:
            total = await threads.add_failures(destination.name, run_id, len(events))
            await self._delivery.update(destination, thread, running_status_line(total))
        return len(events)

    async def _close_thread(
        self, rule: NotificationRule, destination: Destination, event: RunEvent, thread: AlertThread
    ) -> None:
        group_id = rule.group_id(event)
        # Let an open burst finish collecting, so its failures come before the final state.
        open_ms = await self.noise.group_open_ms(rule.name, destination.name, group_id)
        await asyncio.sleep(min(open_ms / 1000, rule.group_window_s))
        async with self._one_at_a_time(rule, destination, group_id, owner=event.event_id):
            await self._end_thread(rule, destination, event, thread)

    async def _end_thread(
        self, rule: NotificationRule, destination: Destination, event: RunEvent, thread: AlertThread
    ) -> None:
        await self._flush(rule, destination, rule.group_id(event), run_id=event.run_id)
        await self._post_final(rule, destination, event, thread)
        await self._threads(rule).mark_sent(destination.name, event.event_id)

    async def _post_final(
        self,
        rule: NotificationRule,
        destination: Destination,
        event: RunEvent,
        thread: AlertThread | None = None,
    ) -> None:
        """Post the run's final state in its thread and put it on top of the first message."""
        thread = await self._threads(rule).get(destination.name, event.run_id) or thread
        if thread is None:
            return
        failures = thread.failures
        message = final_state_message(
            event, failures=failures, webserver_base_url=self._settings.webserver_base_url
        )
        await self._delivery.send(rule, destination, (event,), message, thread, limited=False)
        await self._delivery.update(
            destination, thread, final_status_line(event, failures=failures)
        )


def _ends_run(event: BusEvent) -> TypeGuard[RunEvent]:
    """Whether ``event`` is a run's end (its final state)."""
    return isinstance(event, RunEvent) and event.to_state.is_terminal
