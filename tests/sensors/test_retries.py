"""Handler isolation in burst mode: retries with backoff, then the dead-letter stream."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from bus import Keys
from engine import EngineSettings
from sensors import CodeLocation, Worker, WorkerSettings
from tests.code_locations import flaky
from tests.conftest import TEST_PREFIX
from tests.streams import read_stream
from tests.workers import burst

KEYS = Keys(prefix=TEST_PREFIX)
LOCATION = "tests.code_locations.flaky"


@pytest.fixture(autouse=True)
def clear_counters() -> Iterator[None]:
    flaky.ATTEMPTS.clear()
    flaky.SUCCEEDED.clear()
    yield
    flaky.ATTEMPTS.clear()
    flaky.SUCCEEDED.clear()


@pytest.fixture
def fast_retries(worker_settings: WorkerSettings) -> WorkerSettings:
    return worker_settings.model_copy(update={"retry_base_s": 0.01, "retry_max_s": 0.05})


def dead_letters(client: redis.Redis) -> list[dict[bytes, bytes]]:
    return [fields for _, fields in read_stream(client, KEYS.dead_letter_stream(0))]


def test_a_hook_failing_twice_is_retried_and_the_others_run_once(
    engine_settings: EngineSettings, fast_retries: WorkerSettings, redis_client: redis.Redis
) -> None:
    burst(LOCATION, fast_retries)  # create the groups
    flaky.with_flaky_hook.execute_in_process(raise_on_error=False, settings=engine_settings)

    worker = burst(LOCATION, fast_retries)

    assert flaky.ATTEMPTS == {("flaky", "explode"): 3, ("steady", "explode"): 1}
    assert flaky.SUCCEEDED == {("flaky", "explode"): 1, ("steady", "explode"): 1}
    assert (worker.dispatcher.retried, worker.dispatcher.failed) == (2, 0)
    assert dead_letters(redis_client) == []


def test_a_hook_that_always_fails_goes_to_the_dead_letter_stream_with_its_error(
    engine_settings: EngineSettings, fast_retries: WorkerSettings, redis_client: redis.Redis
) -> None:
    burst(LOCATION, fast_retries)
    flaky.with_hopeless_hook.execute_in_process(raise_on_error=False, settings=engine_settings)

    worker = burst(LOCATION, fast_retries.model_copy(update={"handler_max_attempts": 4}))

    assert flaky.ATTEMPTS == {("hopeless", "explode"): 4, ("steady", "explode"): 1}
    [letter] = dead_letters(redis_client)
    assert letter[b"reason"] == b"handler_failed"
    assert letter[b"handler"] == b"hook:tests.code_locations.flaky:hopeless"
    assert letter[b"attempts"] == b"4"
    assert b"(attempt 4): PermissionError: token revoked" in letter[b"error"]
    assert worker.dispatcher.failed == 1


def test_a_retried_event_is_acked_once_every_handler_is_done(
    engine_settings: EngineSettings, fast_retries: WorkerSettings, redis_client: redis.Redis
) -> None:
    burst(LOCATION, fast_retries)
    flaky.with_flaky_hook.execute_in_process(raise_on_error=False, settings=engine_settings)

    burst(LOCATION, fast_retries)

    assert redis_client.xpending(KEYS.events_stream(0), "hooks")["pending"] == 0


def test_an_entry_that_keeps_killing_workers_is_dead_lettered_not_run_again(
    engine_settings: EngineSettings, fast_retries: WorkerSettings, redis_client: redis.Redis
) -> None:
    burst(LOCATION, fast_retries)
    flaky.with_flaky_hook.execute_in_process(raise_on_error=False, settings=engine_settings)
    stream = KEYS.events_stream(0)
    # Every entry was delivered to a consumer that died each time: six deliveries, idle.
    redis_client.xreadgroup("hooks", "dead-worker", {stream: ">"})
    ids = [entry_id for entry_id, _ in read_stream(redis_client, stream)]
    redis_client.xclaim(
        stream, "hooks", "dead-worker", 0, list[Any](ids), idle=60_000, retrycount=6
    )
    settings = fast_retries.model_copy(
        update={"claim_idle_ms": 100, "reclaim_interval_s": 0.05, "block_ms": 50}
    )

    async def run_briefly() -> Worker:
        worker = Worker(CodeLocation.load(LOCATION), settings)
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(1.0)
        worker.stop()
        await task
        await worker.close()
        return worker

    asyncio.run(run_briefly())

    letters = dead_letters(redis_client)
    assert {letter[b"reason"] for letter in letters} == {b"max_deliveries"}
    assert len(letters) == len(ids)
    assert b"delivered more than 5 times to hooks" in letters[0][b"error"]
    assert flaky.ATTEMPTS == {}
    assert redis_client.xpending(stream, "hooks")["pending"] == 0
