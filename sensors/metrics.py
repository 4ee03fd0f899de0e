"""Prometheus metrics of a worker process, served on an optional port.

The metrics live in prometheus-client's default registry (one worker per process), so a
scrape of ``http://<worker>:<HOOKBUS_METRICS_PORT>/metrics`` shows them, next to the
process and Python collectors.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Final

import redis
from prometheus_client import REGISTRY, Counter, Gauge, Metric, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bus.connection import connect
from bus.inspection import inspect_bus
from bus.keys import Keys
from bus.settings import BusSettings
from sensors.loop_histogram import LoopHistogram, LoopSeries

#: Latency buckets in seconds: alerting is measured in milliseconds, then in seconds.
LATENCY_BUCKETS_S: Final = (
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)

EVENTS_CONSUMED: Final = Counter(
    "hookbus_events_consumed",
    "Stream entries read and acknowledged, by consumer group.",
    ["group"],
)
HANDLER_RUNS: Final = Counter(
    "hookbus_handler_runs",
    "Handler (hook or sensor) runs by outcome: succeeded, failed (will retry), "
    "dead_lettered, skipped_duplicate.",
    ["kind", "outcome"],
)
# Observed per handler, from the event loop only: lock-free (``sensors.loop_histogram``).
HANDLER_DURATION: Final = LoopHistogram(
    "hookbus_handler_duration_seconds",
    "How long a handler ran, in seconds (first attempts run together: their batch's time).",
    ["kind"],
    buckets=LATENCY_BUCKETS_S,
)
EVENT_TO_HANDLER_START: Final = LoopHistogram(
    "hookbus_event_to_handler_start_seconds",
    "End-to-end latency: from the state change in the job to the handler starting.",
    ["kind"],
    buckets=LATENCY_BUCKETS_S,
)
DEAD_LETTERS: Final = Counter(
    "hookbus_dead_letters",
    "Entries and handler runs this worker sent to the dead-letter stream, by reason.",
    ["reason"],
)
HOOK_THREADS_ABANDONED: Final = Gauge(
    "hookbus_hook_threads_abandoned",
    "Threads still running a sync hook (or check) that overran its time limit, by pool.",
    ["pool"],
)
READER_RESTARTS: Final = Counter(
    "hookbus_reader_restarts",
    "Read loops of a consumer group restarted after an unexpected error, by group.",
    ["group"],
)


@functools.cache
def events_consumed(group: str) -> Counter:
    """``EVENTS_CONSUMED`` for one group (cached, as ``handler_runs``)."""
    return EVENTS_CONSUMED.labels(group)


@functools.cache
def handler_runs(kind: str, outcome: str) -> Counter:
    """``HANDLER_RUNS`` for one kind and outcome (cached: ``labels`` costs a lock and a
    lookup, paid per handler at thousands of handlers a second)."""
    return HANDLER_RUNS.labels(kind, outcome)


@functools.cache
def handler_duration(kind: str) -> LoopSeries:
    """``HANDLER_DURATION`` for one kind (cached, as ``handler_runs``)."""
    return HANDLER_DURATION.labels(kind)


@functools.cache
def event_to_handler_start(kind: str) -> LoopSeries:
    """``EVENT_TO_HANDLER_START`` for one kind (cached, as ``handler_runs``)."""
    return EVENT_TO_HANDLER_START.labels(kind)


@functools.lru_cache(maxsize=4096)
def handler_kind(handler_name: str) -> str:
    """``hook`` or ``sensor`` (a bounded label; handler names are not).

    Cached: asked several times per handler run, and a code location has few handlers.
    """
    return handler_name.partition(":")[0] or "unknown"


class BusCollector(Collector):
    """Group lag, pending entries and the dead-letter backlog, read from Redis at scrape time.

    Reading at scrape time means the figures are as fresh as the scrape and need no
    periodic job; ``inspect_bus`` is a handful of cheap commands per stream.
    """

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    def collect(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "hookbus_group_lag",
            "Entries not yet delivered to a consumer group.",
            labels=["stream", "group"],
        )
        pending = GaugeMetricFamily(
            "hookbus_group_pending",
            "Entries delivered to a consumer group and not yet acknowledged.",
            labels=["stream", "group"],
        )
        try:
            status = inspect_bus(self._client, self._keys)
        except redis.RedisError:
            return  # a scrape during a Redis outage shows the counters, not stale gauges
        for stream in status.streams:
            for group in stream.groups:
                if group.lag is not None:
                    lag.add_metric([stream.name, group.name], group.lag)
                pending.add_metric([stream.name, group.name], group.pending)
        yield lag
        yield pending
        yield GaugeMetricFamily(
            "hookbus_dead_letter_backlog",
            "Entries currently in the dead-letter streams.",
            value=status.dead_letters,
        )


def serve_metrics(settings: BusSettings, *, port: int, address: str = "0.0.0.0") -> None:
    """Serve ``/metrics`` on ``address:port`` from a background thread, with bus gauges."""
    REGISTRY.register(BusCollector(connect(settings), settings.keys))
    start_http_server(port, addr=address)
