"""How big each benchmark is: the full run (for ``docs/performance.md``) and the quick one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sizes:
    """Sample counts and sizes of one benchmark run."""

    #: Sequential XADDs timed for the round-trip floor (and wake-ups, up to 500).
    floor_samples: int
    #: Entries per pipelined-XADD and XREADGROUP+XACK trial.
    floor_bulk: int
    #: Trials of each rate figure; the median is reported.
    trials: int
    #: Runs of the 200-op chain (and of the empty job).
    engine_trials: int
    #: Failing runs timed for the failure → hook latency.
    latency_runs: int
    #: Background load during the latency runs, events/s.
    load_rate: float
    #: Seconds each throughput burst should last.
    burst_window_s: float
    #: SIGKILLs timed per way of dying.
    crash_samples: int
    #: How long after a kill the on_crashed hook may take (beyond the heartbeat timeout for
    #: the heartbeat path) before the way of dying counts as not detected, in seconds.
    crash_grace_s: float
    #: Fresh interpreters timed for ``import engine``.
    import_trials: int
    #: Events for the RSS-under-load figure (the first checkpoint is a tenth of it).
    rss_events: int
    #: Seconds the RSS-under-load feed may take; fewer events are used if it would not fit.
    rss_budget_s: float


FULL = Sizes(
    floor_samples=2_000,
    floor_bulk=50_000,
    trials=3,
    engine_trials=5,
    latency_runs=200,
    load_rate=1_000,
    burst_window_s=3.0,
    crash_samples=5,
    crash_grace_s=5.0,
    import_trials=5,
    rss_events=1_000_000,
    rss_budget_s=150.0,
)

#: Small enough for CI (well under a minute), big enough that every code path runs.
QUICK = Sizes(
    floor_samples=100,
    floor_bulk=2_000,
    trials=1,
    engine_trials=1,
    latency_runs=5,
    load_rate=200,
    burst_window_s=0.2,
    crash_samples=1,
    crash_grace_s=2.0,
    import_trials=1,
    rss_events=2_000,
    rss_budget_s=10.0,
)
