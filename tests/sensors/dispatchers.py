"""A ``Dispatcher`` over a real Redis for tests that drive batches by hand."""

from __future__ import annotations

import redis.asyncio as aioredis

from bus import Keys
from bus.backoff import Backoff
from bus.deadletter import DeadLetters
from bus.ledger import Ledger
from sensors import CodeLocation
from sensors.dispatch import Dispatcher
from sensors.hook_threads import HookThreads
from sensors.resources import ResourceBuilder
from tests.conftest import TEST_PREFIX

KEYS = Keys(prefix=TEST_PREFIX)


def make_dispatcher(
    client: aioredis.Redis, threads: HookThreads, *, concurrency: int
) -> Dispatcher:
    """Quick retries (10 ms, 3 attempts), a 5 s time limit, the basic code location."""
    return Dispatcher(
        ledger=Ledger(client, keys=KEYS, ttl_s=60),
        dead_letters=DeadLetters(client, keys=KEYS),
        resources=ResourceBuilder(
            CodeLocation.load("tests.code_locations.basic"), env={}, timeout_s=5
        ),
        consumer="w",
        concurrency=concurrency,
        timeout_s=5,
        threads=threads,
        retry=Backoff(base_s=0.01, max_s=0.01, max_attempts=3),
        reconnect=Backoff(base_s=0.01, max_s=0.01),
    )
