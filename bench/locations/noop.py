"""No-op hooks and a long chain of no-op ops: what the engine and a worker cost by themselves.

No sensors here on purpose: each sensor is its own consumer group that reads every event,
so a throughput figure would then measure sensors, not hook dispatch.
"""

from __future__ import annotations

from engine import job, op
from sensors import HookContext, failure_hook, success_hook

#: How many ops the chain job runs (the issue's figure is per op over 200 chained ops).
CHAIN_LENGTH = 200


@success_hook
def noop_sync(context: HookContext) -> None:
    """A sync hook that does nothing: runs in the worker's thread pool."""


@success_hook
async def noop_async(context: HookContext) -> None:
    """An async hook that does nothing: runs on the worker's event loop."""


@failure_hook
def noop_failure(context: HookContext) -> None:
    """A failure hook that does nothing (attached, never triggered in the chain job)."""


@op
def step(value: int) -> int:
    return value + 1


@job(hooks={noop_sync, noop_failure})
def chain() -> int:
    """``CHAIN_LENGTH`` chained no-op ops, with a job-level success and failure hook."""
    value = 0
    for _ in range(CHAIN_LENGTH):
        value = step(value)
    return value


@job(hooks={noop_sync, noop_failure})
def empty() -> int:
    """The same job with no ops: its cost is subtracted from the chain's."""
    return 0


@job(hooks={noop_sync})
def feed_sync() -> int:
    """One op whose completion triggers ``noop_sync``: the template of the load events."""
    return step(0)  # type: ignore[no-any-return]


@job(hooks={noop_async})
def feed_async() -> int:
    """One op whose completion triggers ``noop_async``."""
    return step(0)  # type: ignore[no-any-return]
