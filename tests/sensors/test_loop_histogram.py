"""A lock-free histogram for the event loop reads exactly like prometheus-client's own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from sensors.loop_histogram import LoopHistogram

BUCKETS = (0.001, 0.01, 0.1, 1.0)


def exposition(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "_created" not in line]


def test_the_exposition_matches_a_prometheus_client_histogram() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopHistogram("x_seconds", "Help.", ["kind"], buckets=BUCKETS, registry=ours)
    reference = Histogram("x_seconds", "Help.", ["kind"], buckets=BUCKETS, registry=theirs)
    for kind, value in [("hook", 0.0005), ("hook", 0.01), ("hook", 0.5), ("hook", 7.0)] + [
        ("sensor", 0.02)
    ]:
        loop.labels(kind).observe(value)
        reference.labels(kind).observe(value)

    assert exposition(ours) == exposition(theirs)
    assert repr(loop) == "<LoopHistogram x_seconds series=2>"
    assert repr(loop.labels("sensor")) == "<LoopSeries count=1 sum=0.02>"
