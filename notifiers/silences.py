"""Silences: "don't alert about job X for 2 hours", as Alertmanager users expect.

A silence matches events by job, op, rule and run tags (every matcher given must match)
until it ends. Silences live in Redis (``bus.keys.Keys.silences``) so every worker sees
them at once; ``hookbus silences add|list|remove`` manages them. Each alert a silence
suppresses is counted on the silence and recorded in the suppressed-alerts stream, so
"what did we not hear about?" has an answer.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field

from bus.connection import connect_async
from bus.events import BusEvent, OpEvent
from bus.keys import Keys
from bus.settings import BusSettings
from notifiers.errors import NotifierConfigError, SilenceNotFoundError

T = TypeVar("T")

logger = logging.getLogger(__name__)

_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_duration(text: str) -> timedelta:
    """``"90s"``, ``"30m"``, ``"2h"``, ``"1d"``, ``"1w"`` as a ``timedelta``.

    Raises:
        NotifierConfigError: the text is not a number followed by s, m, h, d or w.
    """
    match = _DURATION.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise NotifierConfigError(
            f"silence duration {text!r} is not understood: got {text!r}. Use a positive "
            "number and a unit: 90s, 30m, 2h, 1d or 1w."
        )
    return timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])


class Silence(BaseModel):
    """One silence: what it matches and until when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    job: str | None = None
    op: str | None = None
    rule: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    ends_at: datetime
    created_by: str = ""
    comment: str = ""

    def __repr__(self) -> str:
        return f"<Silence id={self.id!r} {self.describe()} until={self.ends_at.isoformat()}>"

    def describe(self) -> str:
        """The matchers as ``job=etl op=load tag:team=data``."""
        parts = [f"{name}={value}" for name, value in self._named() if value is not None]
        parts += [f"tag:{key}={value}" for key, value in sorted(self.tags.items())]
        return " ".join(parts)

    def _named(self) -> list[tuple[str, str | None]]:
        return [("job", self.job), ("op", self.op), ("rule", self.rule)]

    def active(self, now: datetime) -> bool:
        """Whether the silence applies at ``now``."""
        return self.starts_at <= now < self.ends_at

    def matches(self, event: BusEvent, *, rule: str) -> bool:
        """Whether every matcher this silence has matches ``event`` under ``rule``.

        A check event has no op; its tags are its run's (a stuck run), else none.
        """
        op = event.op if isinstance(event, OpEvent) else None
        tags = event.run.tags if event.run is not None else {}
        checks = [
            self.job is None or self.job == event.job_name,
            self.op is None or (op is not None and self.op in (op.name, op.step_key)),
            self.rule is None or self.rule == rule,
            all(tags.get(key) == value for key, value in self.tags.items()),
        ]
        return all(checks)


def new_silence(
    *,
    duration: timedelta,
    job: str | None = None,
    op: str | None = None,
    rule: str | None = None,
    tags: Mapping[str, str] | None = None,
    created_by: str = "",
    comment: str = "",
) -> Silence:
    """A silence starting now.

    Raises:
        NotifierConfigError: no matcher was given (a silence must not mute everything).
    """
    if job is None and op is None and rule is None and not tags:
        raise NotifierConfigError(
            "silence matches nothing in particular: got no --job, --op, --rule or --tag. "
            "Give at least one matcher; a silence must not mute every alert."
        )
    now = datetime.now(UTC)
    return Silence(
        job=job,
        op=op,
        rule=rule,
        tags=dict(tags or {}),
        starts_at=now,
        ends_at=now + duration,
        created_by=created_by,
        comment=comment,
    )


class SilenceStore:
    """Silences in Redis, shared by every worker and the CLI.

    Args:
        client: an asyncio Redis client.
        keys: key names.
    """

    def __init__(self, client: aioredis.Redis, *, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    def __repr__(self) -> str:
        return f"<SilenceStore key={self._keys.silences()!r}>"

    async def add(self, silence: Silence) -> Silence:
        """Store ``silence``; return it."""
        await self._client.hset(self._keys.silences(), silence.id, silence.model_dump_json())
        logger.info(
            "silence added id=%s %s until=%s", silence.id, silence.describe(), silence.ends_at
        )
        return silence

    async def list(self, *, now: datetime | None = None) -> list[tuple[Silence, int]]:
        """Active and future silences with how many alerts each suppressed, by end time.

        Expired silences are removed on the way.
        """
        now = now or datetime.now(UTC)
        raw: dict[Any, Any] = await self._client.hgetall(self._keys.silences())
        hits: dict[Any, Any] = await self._client.hgetall(self._keys.silence_hits())
        silences = [Silence.model_validate_json(value) for value in raw.values()]
        expired = [silence.id for silence in silences if silence.ends_at <= now]
        if expired:
            await self._client.hdel(self._keys.silences(), *expired)
            await self._client.hdel(self._keys.silence_hits(), *expired)
        live = sorted((s for s in silences if s.ends_at > now), key=lambda s: s.ends_at)
        return [(s, int(hits.get(s.id.encode(), b"0"))) for s in live]

    async def remove(self, silence_id: str) -> None:
        """Remove a silence (alerts it matched are sent again from now on).

        Raises:
            SilenceNotFoundError: no silence has this id (a typo, or it already ended).
        """
        removed = await self._client.hdel(self._keys.silences(), silence_id)
        await self._client.hdel(self._keys.silence_hits(), silence_id)
        if not removed:
            raise SilenceNotFoundError(
                f"silence {silence_id!r} does not exist: got no silence with that id (a typo, "
                "or it already ended). List the active ones with: hookbus silences list"
            )
        logger.info("silence removed id=%s", silence_id)

    async def matching(self, event: BusEvent, *, rule: str) -> Silence | None:
        """The first active silence that matches ``event`` under ``rule``; count the hit."""
        now = datetime.now(UTC)
        for silence, _hits in await self.list(now=now):
            if silence.active(now) and silence.matches(event, rule=rule):
                await self._client.hincrby(self._keys.silence_hits(), silence.id, 1)
                return silence
        return None


def with_silences(settings: BusSettings, action: Callable[[SilenceStore], Awaitable[T]]) -> T:
    """Run ``action`` on the silences of ``settings``' Redis, from synchronous code (the CLI).

    Example:
        ``with_silences(settings, lambda store: store.add(silence))``
    """

    async def run() -> T:
        client = connect_async(settings)
        try:
            return await action(SilenceStore(client, keys=settings.keys))
        finally:
            await client.aclose()

    return asyncio.run(run())
