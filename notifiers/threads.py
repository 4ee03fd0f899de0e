"""Where a run's alerts thread: the first message's ``ts`` per (destination, run), in Redis.

Slack threads a reply under a message by its ``ts``. The first alert of a run at a
destination is posted at the top of the channel and its ``ts`` (and the message itself,
so it can be re-sent with ``chat.update``) is kept here; every later alert of the run
(more failures, a grouped burst, the final state) replies in that thread. Any worker can
post a follow-up, since the state is in Redis, not in a process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from bus.keys import Keys
from notifiers.format import SlackMessage


@dataclass(frozen=True, slots=True)
class AlertThread:
    """A run's thread at one destination.

    Attributes:
        ts: the first message's id (replies go under it).
        message: the first message as posted (to update it later).
        failures: failures alerted in this thread so far.
    """

    ts: str
    message: SlackMessage
    failures: int


class ThreadStore:
    """Threads of runs per destination.

    Args:
        client: an asyncio Redis client.
        keys: key names.
        ttl_s: how long a thread is remembered, in seconds.
    """

    def __init__(self, client: aioredis.Redis, *, keys: Keys, ttl_s: int) -> None:
        self._client = client
        self._keys = keys
        self._ttl_s = ttl_s

    def __repr__(self) -> str:
        return f"<ThreadStore prefix={self._keys.prefix!r} ttl_s={self._ttl_s}>"

    async def get(self, destination: str, run_id: str) -> AlertThread | None:
        """The run's thread at ``destination``, if a message was posted for it."""
        raw: dict[Any, Any] = await self._client.hgetall(
            self._keys.alert_thread(destination, run_id)
        )
        if b"ts" not in raw:
            return None
        message: dict[str, Any] = json.loads(raw.get(b"message", b"{}"))
        return AlertThread(
            ts=raw[b"ts"].decode(),
            message=SlackMessage(
                text=message.get("text", ""), blocks=tuple(message.get("blocks", ()))
            ),
            failures=int(raw.get(b"failures", b"0")),
        )

    async def open(
        self, destination: str, run_id: str, *, ts: str, message: SlackMessage, failures: int
    ) -> None:
        """Remember the run's first message at ``destination``."""
        key = self._keys.alert_thread(destination, run_id)
        body = json.dumps({"text": message.text, "blocks": list(message.blocks)})
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"ts": ts, "message": body, "failures": failures})
            pipe.expire(key, self._ttl_s)
            await pipe.execute()

    async def add_failures(self, destination: str, run_id: str, count: int) -> int:
        """Count ``count`` more failures alerted in the thread; return the total."""
        key = self._keys.alert_thread(destination, run_id)
        total: int = await self._client.hincrby(key, "failures", count)
        return total

    async def already_sent(self, destination: str, event_id: str) -> bool:
        """Whether the alert for ``event_id`` already reached ``destination``."""
        return bool(await self._client.exists(self._keys.alert_sent(destination, event_id)))

    async def mark_sent(self, destination: str, event_id: str) -> None:
        """Record that the alert for ``event_id`` reached ``destination``."""
        await self._client.set(self._keys.alert_sent(destination, event_id), "1", ex=self._ttl_s)
