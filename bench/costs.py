"""CPU per event handled: the worker's and Redis's, the two that share this machine's cores.

Two workers share two cores with Redis, so if each needs W µs of CPU per event and Redis
R µs, they handle at most 2 / (W + R) events a µs, and the two-worker ratio is about
2W / (W + R): the estimate the throughput section prints beside the ratio. It is not a
hard bound: W is measured on one worker alone, and two workers each read fuller batches
(less CPU per event) or contend for the cores (more).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import redis


@dataclass(frozen=True, slots=True)
class CpuReading:
    """CPU seconds used so far by one worker process and by the Redis server."""

    worker_s: float
    redis_s: float


def read_cpu(client: redis.Redis, worker_pid: int) -> CpuReading:
    """The CPU ``worker_pid`` and Redis have used so far, in seconds (Redis's as ``INFO
    cpu`` tells it: every client's work, so take it while only the workers are busy)."""
    info = client.info("cpu")
    redis_s = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return CpuReading(worker_s=process_cpu_s(worker_pid), redis_s=redis_s)


def process_cpu_s(pid: int, *, proc: Path = Path("/proc")) -> float:
    """User plus system CPU time of process ``pid``, in seconds (Linux ``/proc``)."""
    fields = (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def cpu_bound_ratio(worker_us: float, redis_us: float) -> float:
    """What two workers do over one if both and Redis are CPU-bound on 2 cores,
    2W / (W + R), with W and R per event."""
    return 2 * worker_us / (worker_us + redis_us)
