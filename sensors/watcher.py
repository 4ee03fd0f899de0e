"""Watching the watcher: alert when the alerting path itself is broken, and when it heals.

Two conditions are watched, each announced once when it starts (after it has lasted
``watch_for_s``), reminded at most every ``watch_renotify_s``, and announced once more
when it clears:

- ``alerting_stalled``: too few live workers, or a consumer group lagging or holding an
  entry pending too long — alerts are not going out;
- ``dead_letters``: the dead-letter streams are not empty — some alert or hook failed for
  good and needs a human (this also covers a notifier that keeps failing).

State lives in Redis (``Keys.watch_state``), so restarts do not repeat announcements, and
a lease makes one watcher do the work when several run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis
import redis.asyncio as aioredis

from bus.inspection import BusStatus, inspect_bus
from bus.keys import Keys
from bus.lease import Lease
from notifiers.errors import NotifierError
from notifiers.types import Notifier
from sensors.settings import WatchSettings
from sensors.status import find_problems

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Observation:
    """Whether one condition holds right now, and why."""

    condition: str
    firing: bool
    detail: str = ""


def observe(status: BusStatus, settings: WatchSettings) -> list[Observation]:
    """The watched conditions, evaluated on one snapshot of the bus."""
    problems = find_problems(status, settings)
    letters = status.dead_letters
    return [
        Observation("alerting_stalled", bool(problems), "; ".join(problems)),
        Observation(
            "dead_letters",
            letters > 0,
            f"{letters} dead letter(s) waiting: see hookbus dlq list, fix the cause, then "
            "hookbus dlq replay <id>",
        ),
    ]


class Watcher:
    """Announces changes of the watched conditions through ``notifiers`` (first that works).

    Args:
        client: a synchronous Redis client (inspection and state).
        lease_client: an asyncio client for the lease.
        settings: thresholds and timings.
        notifiers: where to announce, in order of preference; the next is tried when one
            fails, so configure a second one that does not share the first one's fate.
        owner: this watcher's name, for the lease.
    """

    def __init__(
        self,
        client: redis.Redis,
        lease_client: aioredis.Redis,
        *,
        settings: WatchSettings,
        notifiers: Sequence[Notifier],
        owner: str,
    ) -> None:
        self._client = client
        self._keys: Keys = settings.keys
        self._settings = settings
        self._notifiers = list(notifiers)
        ttl_ms = int(settings.watch_interval_s * 3000)
        self._lease = Lease(lease_client, key=self._keys.lease("watch"), owner=owner, ttl_ms=ttl_ms)
        self.announced: list[str] = []

    def __repr__(self) -> str:
        return f"<Watcher owner={self._lease.owner!r} announced={len(self.announced)}>"

    async def run(self, stop: asyncio.Event) -> None:
        """Check every ``watch_interval_s`` until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.check_once()
            except redis.RedisError as exc:
                logger.warning("watcher: Redis unavailable (%s); retrying next round", exc)
            try:
                await asyncio.wait_for(stop.wait(), timeout=self._settings.watch_interval_s)
            except TimeoutError:
                pass

    async def check_once(self, *, now: float | None = None) -> list[str]:
        """One round: observe, compare with the remembered state, announce changes."""
        if not await self._lease.acquire():
            return []
        status = await asyncio.to_thread(inspect_bus, self._client, self._keys)
        moment = time.time() if now is None else now
        messages = [
            message
            for observation in observe(status, self._settings)
            if (message := self._transition(observation, moment)) is not None
        ]
        for message in messages:
            await asyncio.to_thread(self._announce, message)
        return messages

    def _transition(self, observation: Observation, now: float) -> str | None:
        key, field = self._keys.watch_state(), observation.condition
        raw = self._client.hget(key, field)
        state: dict[str, float] = json.loads(raw) if raw else {}
        if not observation.firing:
            if raw is not None:
                self._client.hdel(key, field)
            if "notified_at" in state:
                lasted = _duration(now - state["since"])
                return f"RESOLVED hookbus {field}: cleared after {lasted}."
            return None
        state.setdefault("since", now)
        due = now - state["since"] >= self._settings.watch_for_s and (
            now - state.get("notified_at", -1e18) >= self._settings.watch_renotify_s
        )
        if due:
            state["notified_at"] = now
        self._client.hset(key, field, json.dumps(state))
        return f"FIRING hookbus {field}: {observation.detail}" if due else None

    def _announce(self, message: str) -> None:
        self.announced.append(message)
        for notifier in self._notifiers:
            try:
                notifier.post(message)
                logger.warning("watcher announced via %r: %s", notifier, message)
                return
            except NotifierError as exc:
                logger.error(
                    "watcher could not announce via %r (%s); trying the next", notifier, exc
                )
        logger.error("watcher: every notifier failed; the announcement was: %s", message)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
