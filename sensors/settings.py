"""Settings of a sensor worker process (``hookbus worker``), loaded once at startup."""

from __future__ import annotations

import os
import socket

from pydantic import Field, model_validator

from bus.settings import BusSettings
from notifiers.settings import NotifierSettings


def _default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class WorkerSettings(NotifierSettings):
    """``HOOKBUS_*`` settings for workers (and, inherited, those of their notifiers).

    Example:
        ``HOOKBUS_CONCURRENCY=32 hookbus worker my_pipelines.definitions``
    """

    #: This worker's consumer name in every group; unique per process.
    consumer_name: str = Field(default_factory=_default_consumer_name, min_length=1)
    #: How long one XREADGROUP waits for new entries, in milliseconds.
    block_ms: int = Field(default=2_000, ge=1)
    #: Entries read per XREADGROUP (at most ``max_in_flight``). A batch is handled as one
    #: (one ledger round trip, one hand-off to the hook threads), so bigger batches cost
    #: less per event; a quiet stream still returns each event at once.
    read_count: int = Field(default=256, ge=1)
    #: Handlers (hooks, sensors) running at once in this worker: sync ones in a pool of
    #: this many threads, async ones this many at a time on the event loop.
    concurrency: int = Field(default=16, ge=1)
    #: Spare threads for sync hooks (and checks) that overran ``handler_timeout_s`` and
    #: still run (a hung HTTP call): each abandoned thread is replaced from these, so hung
    #: hooks do not starve the others. Beyond this, new sync calls wait for a thread.
    max_abandoned_threads: int = Field(default=16, ge=0)
    #: A handler still running after this many seconds is abandoned as failed.
    handler_timeout_s: float = Field(default=60.0, gt=0)
    #: How long the record that a handler succeeded for an event is kept at least, in
    #: seconds (records are kept per hour: up to two hours more). Must outlast any
    #: redelivery; default 7 days.
    idempotency_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    #: How often the worker refreshes its liveness key, in seconds.
    heartbeat_interval_s: float = Field(default=5.0, gt=0)
    #: Attempts per handler and event (the first run included) before its error goes to
    #: the dead-letter stream. Handlers that succeeded are never re-run.
    handler_max_attempts: int = Field(default=3, ge=1)
    #: Delay after a handler's first failure, doubled on each further one (with jitter),
    #: in seconds.
    retry_base_s: float = Field(default=0.5, ge=0)
    #: The largest delay between two attempts of a handler, in seconds.
    retry_max_s: float = Field(default=30.0, ge=0)
    #: An entry pending this long in a consumer that stopped refreshing it (a dead
    #: worker) is taken over by another (XAUTOCLAIM), in milliseconds. Live workers refresh
    #: their entries every third of this, so a long hook is never taken away.
    claim_idle_ms: int = Field(default=15_000, ge=100)
    #: An entry delivered more than this many times (each time its worker died: an
    #: entry that kills workers, e.g. a hook that exhausts memory) is dead-lettered instead
    #: of being reclaimed again.
    max_deliveries: int = Field(default=5, ge=1)
    #: How often each worker looks for entries to take over, in seconds.
    reclaim_interval_s: float = Field(default=5.0, gt=0)
    #: Entries a worker holds at once (being handled or waiting for a handler slot);
    #: it reads no more until some are acked.
    max_in_flight: int = Field(default=1024, ge=1)
    #: On SIGTERM, how long to let running handlers finish before handing their entries
    #: back (left pending for another worker), in seconds.
    shutdown_grace_s: float = Field(default=25.0, ge=0)
    #: The longest wait between two reconnection attempts while Redis is away, in seconds.
    reconnect_max_s: float = Field(default=5.0, gt=0)
    #: How often the worker looks for runs whose heartbeat deadline passed, in seconds.
    #: A lost run's crash is published at most this long after its deadline, so the
    #: default keeps SIGKILL-of-everything → ``on_crashed`` within heartbeat timeout + 1 s.
    crash_check_interval_s: float = Field(default=0.5, gt=0)
    #: The engines' heartbeat timeout (the same variable as ``EngineSettings``'s). After
    #: its link to Redis broke (an outage, a restart), a worker claims no lost run until it
    #: has been connected this long, so the engines had the time to heartbeat again.
    heartbeat_timeout_s: float = Field(default=10.0, ge=0.5)
    #: Serve Prometheus metrics on this port (``/metrics``); unset: no metrics server.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    #: How often time-based checks (stuck runs, freshness, failure counts) are evaluated,
    #: in seconds.
    check_interval_s: float = Field(default=30.0, gt=0)
    #: How often event and dead-letter streams are trimmed, in seconds.
    retention_interval_s: float = Field(default=60.0, gt=0)
    #: Events older than this are trimmed, unless a consumer group still needs them, in
    #: seconds (default 7 days; also how far back ``hookbus sensors replay`` can go).
    stream_max_age_s: float = Field(default=7 * 24 * 3600, gt=0)
    #: Hard cap on each event stream's length: reached only when a group falls far
    #: behind (or a sensor stays stopped); then entries it had not handled are trimmed
    #: and an error names the group.
    stream_max_len: int = Field(default=1_000_000, ge=1)
    #: Dead letters older than this are trimmed, in seconds (default 30 days).
    dead_letter_max_age_s: float = Field(default=30 * 24 * 3600, gt=0)

    @model_validator(mode="after")
    def _batches_fit_in_flight(self) -> WorkerSettings:
        if self.read_count > self.max_in_flight:
            raise ValueError(
                f"HOOKBUS_READ_COUNT ({self.read_count}) is larger than HOOKBUS_MAX_IN_FLIGHT "
                f"({self.max_in_flight}): a batch read must fit in what a worker may hold. "
                "Lower HOOKBUS_READ_COUNT or raise HOOKBUS_MAX_IN_FLIGHT."
            )
        return self


class HealthThresholds(BusSettings):
    """When ``hookbus status`` (and the watcher) call the alerting path unhealthy.

    Example:
        ``HOOKBUS_MAX_LAG=5000 hookbus status``
    """

    #: Entries a group may have waiting before it counts as falling behind.
    max_lag: int = Field(default=1_000, ge=0)
    #: Seconds the oldest pending (delivered, unacked) entry may wait.
    max_pending_age_s: float = Field(default=120.0, gt=0)
    #: Live workers required (0 disables the check, e.g. for a stopped test environment).
    min_workers: int = Field(default=1, ge=0)


class WatchSettings(HealthThresholds, NotifierSettings):
    """The watcher of the alerting path itself (``hookbus watch``).

    Example:
        ``HOOKBUS_WATCH_FOR_S=60 hookbus watch``
    """

    #: How often the watcher looks, in seconds.
    watch_interval_s: float = Field(default=5.0, gt=0)
    #: How long a problem must last before it is announced, in seconds (Prometheus' ``for``).
    watch_for_s: float = Field(default=30.0, ge=0)
    #: While a problem lasts, remind at most this often, in seconds.
    watch_renotify_s: float = Field(default=3600.0, gt=0)
