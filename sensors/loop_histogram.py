"""Histograms fed from the worker's event loop alone, without a lock per observation.

prometheus-client's ``Histogram`` takes a lock for the sum, one for the bucket and one
for the count on every ``observe``; a worker observes two histograms per handler, and at
thousands of handlers a second those locks cost more than the hooks. These series are
only ever written from the loop's thread, so plain integers do; a scrape (from the
metrics server's thread) reads them through prometheus-client's custom-collector API, and
may at worst see one observation counted in a bucket a moment before its sum.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector


class LoopSeries:
    """One labelled series: a count per bucket (not cumulative) and the sum."""

    __slots__ = ("_bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def __repr__(self) -> str:
        return f"<LoopSeries count={sum(self.counts)} sum={self.sum:g}>"

    def observe(self, value: float, count: int = 1) -> None:
        """Count ``value``, ``count`` times (handlers of one batch share their duration;
        from the event loop's thread only)."""
        self.counts[bisect.bisect_left(self._bounds, value)] += count
        self.sum += value * count


class LoopHistogram(Collector):
    """A histogram with labels, exposed like prometheus-client's ``Histogram``.

    Args:
        name: the metric name (``_bucket``, ``_count`` and ``_sum`` are added).
        documentation: its help text.
        labelnames: the label names.
        buckets: the upper bounds, ascending (``+Inf`` is added).
        registry: where to register it (default: prometheus-client's global registry;
            ``None``: nowhere).
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self.name = name
        self._documentation = documentation
        self._labelnames = list(labelnames)
        self._bounds = sorted(buckets)
        self._series: dict[tuple[str, ...], LoopSeries] = {}
        if registry is not None:
            registry.register(self)

    def __repr__(self) -> str:
        return f"<LoopHistogram {self.name} series={len(self._series)}>"

    def labels(self, *values: str) -> LoopSeries:
        """The series for these label values (created on first use)."""
        series = self._series.get(values)
        if series is None:
            series = self._series[values] = LoopSeries(self._bounds)
        return series

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self._documentation, labels=self._labelnames)
        for values, series in list(self._series.items()):
            counts, total = list(series.counts), 0
            buckets: list[tuple[str, float]] = []
            for bound, count in zip([*self._bounds, float("inf")], counts, strict=True):
                total += count
                buckets.append((_bound_text(bound), total))
            family.add_metric(list(values), buckets, series.sum)
        yield family


def _bound_text(bound: float) -> str:
    """A bucket's ``le`` label as prometheus-client writes it (``0.001``, ``1.0``, ``+Inf``)."""
    return "+Inf" if bound == float("inf") else repr(float(bound))
