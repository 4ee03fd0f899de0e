"""Every Redis key, stream and consumer-group name hookbus uses, built in one place.

Names that must share a Redis Cluster slot carry the same ``{hash tag}``: a shard's event
stream and its dead-letter stream share the tag ``{<prefix>:s<shard>}`` so that one run's
events (always in one shard) keep their order and can be moved between them atomically.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Final

#: The consumer group that runs hooks. The publisher creates it (at ``$``, with MKSTREAM)
#: before its first XADD, so events published before any worker starts are still handled.
HOOKS_GROUP: Final = "hooks"


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one prefix (``HOOKBUS_KEY_PREFIX``), for ``shards`` event streams."""

    prefix: str = "hookbus"
    shards: int = 1

    def shard_of(self, run_id: str) -> int:
        """The shard a run's events go to; stable, so one run's events stay in order."""
        return zlib.crc32(run_id.encode()) % self.shards

    def _tag(self, shard: int) -> str:
        return f"{{{self.prefix}:s{shard}}}"

    def events_stream(self, shard: int) -> str:
        """The stream of run/op events of one shard. Trimmed by age/size, never expires."""
        return f"{self._tag(shard)}:events"

    def stream_for_run(self, run_id: str) -> str:
        """The event stream a run publishes to."""
        return self.events_stream(self.shard_of(run_id))

    def all_event_streams(self) -> list[str]:
        """Every shard's event stream, in shard order."""
        return [self.events_stream(shard) for shard in range(self.shards)]

    def dead_letter_stream(self, shard: int) -> str:
        """Entries and handler runs that could not be processed, with the reason. No TTL."""
        return f"{self._tag(shard)}:dead"

    def dead_letter_for(self, events_stream: str) -> str:
        """The dead-letter stream that goes with ``events_stream`` (same shard, same slot)."""
        return events_stream.removesuffix(":events") + ":dead"

    def sensor_group(self, sensor_name: str) -> str:
        """The consumer group of one sensor: each sensor has its own position and lag."""
        return f"sensor:{sensor_name}"

    def handled(self, event_id: str, handler: str) -> str:
        """Idempotency record of (event, handler): set once the handler succeeded.

        TTL: ``WorkerSettings.idempotency_ttl_s`` (longer than any redelivery can take).
        """
        return f"{self.prefix}:handled:{event_id}:{handler}"

    def run_heartbeat(self, run_id: str) -> str:
        """A running job's heartbeat; TTL = the heartbeat timeout, refreshed by the engine."""
        return f"{self.prefix}:run:{run_id}:heartbeat"

    def lease(self, name: str) -> str:
        """The lease of periodic job ``name`` (see ``bus.lease``); TTL = the lease's TTL."""
        return f"{self.prefix}:lease:{name}"

    def watch_state(self) -> str:
        """The watcher's memory of which alerting-path conditions are firing (a hash,
        field = condition, value = JSON since/notified_at). No TTL: it is tiny and must
        survive until the condition clears."""
        return f"{self.prefix}:watch"

    def worker_heartbeat(self, consumer: str) -> str:
        """A live worker's heartbeat (``hookbus worker --check``); TTL a few intervals."""
        return f"{self.prefix}:worker:{consumer}"

    def sensor_stopped(self, sensor_name: str) -> str:
        """Present while a sensor is stopped (``hookbus sensors stop``); no TTL.

        Workers check it before each read of the sensor's group, so a stopped sensor's
        position stays where it was until ``hookbus sensors start`` or ``replay`` moves it.
        """
        return f"{self.prefix}:sensor:{sensor_name}:stopped"
