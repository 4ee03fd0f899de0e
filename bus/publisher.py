"""Publishing events to Redis Streams without ever blocking or failing the pipeline.

``Publisher.publish`` is the engine's only way onto the bus. It XADDs the event to its
run's shard; if Redis does not answer, the event is kept in order in a backlog and
delivered before the next event, so a Redis outage delays alerts but never loses or
reorders them, and never raises into user code.
"""

from __future__ import annotations

import logging
from collections import deque

import redis

from bus.events import OpEvent, RunEvent, encode_event
from bus.keys import HOOKS_GROUP, Keys

logger = logging.getLogger(__name__)

#: The stream field that holds the JSON event.
EVENT_FIELD = b"event"


class Publisher:
    """Appends events to the run's event stream, in order, never raising.

    Args:
        client: a synchronous Redis client.
        keys: key names (prefix and shard count).
        max_len: approximate cap on each stream's length (``XADD MAXLEN ~``); ``None``
            leaves trimming to the workers' retention job.
    """

    def __init__(self, client: redis.Redis, *, keys: Keys, max_len: int | None = None) -> None:
        self._client = client
        self._keys = keys
        self._max_len = max_len
        self._groups_ready: set[str] = set()
        self._backlog: deque[tuple[str, bytes]] = deque()
        self.published = 0

    def __repr__(self) -> str:
        return f"<Publisher published={self.published} backlog={len(self._backlog)}>"

    @property
    def backlog(self) -> int:
        """Events waiting for Redis to answer."""
        return len(self._backlog)

    def publish(self, event: RunEvent | OpEvent) -> bool:
        """Send ``event`` (after any backlog); return whether everything is now in Redis."""
        self._backlog.append((self._keys.stream_for_run(event.run_id), encode_event(event)))
        return self.flush()

    def flush(self) -> bool:
        """Deliver the backlog in order; return whether it is empty."""
        while self._backlog:
            stream, payload = self._backlog[0]
            try:
                self._ensure_hooks_group(stream)
                self._client.xadd(
                    stream, {EVENT_FIELD: payload}, maxlen=self._max_len, approximate=True
                )
            except redis.RedisError as exc:
                logger.warning(
                    "publish deferred: Redis unavailable (%s); backlog=%d, will retry on the "
                    "next event",
                    type(exc).__name__,
                    len(self._backlog),
                )
                return False
            self._backlog.popleft()
            self.published += 1
        return True

    def _ensure_hooks_group(self, stream: str) -> None:
        # The hooks group is created with the stream, at "$", so that an event published
        # before any worker has started is still delivered to the first one.
        if stream in self._groups_ready:
            return
        try:
            self._client.xgroup_create(stream, HOOKS_GROUP, id="$", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups_ready.add(stream)
