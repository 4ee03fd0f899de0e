"""Section 2, engine overhead: what publishing every transition costs each op.

A job of ``CHAIN_LENGTH`` chained no-op ops with a job-level success and failure hook runs
in this process; the same job with no ops is subtracted, so what is left is the cost of
the ops' transitions (two events each), divided per op.
"""

from __future__ import annotations

import time

from bench.env import BenchEnv
from bench.floor import Floor
from bench.locations.noop import CHAIN_LENGTH, chain, empty
from bench.report import Figure, at_most, figure
from bench.stats import median
from engine import JobDefinition

SECTION = "2 Engine overhead"


def measure_engine(env: BenchEnv, floor: Floor, *, trials: int) -> list[Figure]:
    """Time the chain and the empty job ``trials`` times each; report the median per op."""
    _timed(env, empty)  # warm up: imports, connection set-up
    chain_s = median([_timed(env, chain) for _ in range(trials)])
    empty_s = median([_timed(env, empty) for _ in range(trials)])
    per_op_ms = max(0.0, chain_s - empty_s) / CHAIN_LENGTH * 1000
    rtt_ms = floor.xadd_p50_s * 1000
    return [
        figure(
            SECTION,
            f"per op ({CHAIN_LENGTH} chained no-op ops)",
            per_op_ms,
            "ms",
            target="≤ 2 XADD round trips",
            check=at_most(2 * rtt_ms),
            floor=("XADD p50", rtt_ms),
            note=f"median of {trials}; 2 events per op; run with no ops subtracted",
        ),
        figure(
            SECTION,
            "whole run, no ops",
            empty_s * 1000,
            "ms",
            floor=("XADD p50", rtt_ms),
            note="connect, 3 run events, close",
        ),
    ]


def _timed(env: BenchEnv, job_def: JobDefinition) -> float:
    started = time.perf_counter()
    job_def.execute_in_process(settings=env.settings)
    return time.perf_counter() - started
