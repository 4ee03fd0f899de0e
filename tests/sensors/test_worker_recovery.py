"""A worker survives its own bugs: entries are handed back, read loops restart."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from bus import HOOKS_GROUP, BusEvent, Keys, decode_event
from engine import EngineSettings
from sensors import CodeLocation, Worker, WorkerSettings
from sensors.handlers import Handler, MissingHook
from tests.code_locations import basic
from tests.conftest import TEST_PREFIX
from tests.processes import wait_until
from tests.streams import read_stream

KEYS = Keys(prefix=TEST_PREFIX)
STREAM = KEYS.events_stream(0)


@pytest.fixture(autouse=True)
def clear_calls() -> Iterator[None]:
    basic.CALLS.clear()
    yield
    basic.CALLS.clear()


def with_a_bug(worker: Worker) -> Worker:
    """``worker`` with a bug of its own (not in a hook) on the events of job ``quiet``."""
    hooks = worker.subscriptions[0]
    assert hooks.group == HOOKS_GROUP
    select = hooks.select

    def buggy(event: BusEvent) -> tuple[list[Handler], list[MissingHook]]:
        if event.job_name == "quiet":
            raise RuntimeError("a bug in hookbus")
        return select(event)

    hooks.select = buggy
    return worker


@contextmanager
def running(worker: Worker) -> Iterator[Worker]:
    """Run ``worker`` on its own loop in a thread; stop and close it on exit."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(worker.run(),))
    thread.start()
    try:
        yield worker
    finally:
        loop.call_soon_threadsafe(worker.stop)
        thread.join(15)
        loop.run_until_complete(worker.close())
        loop.close()


def notified_runs() -> set[str]:
    return {details["run_id"] for name, details in basic.CALLS if name == "notify"}


def test_an_entry_our_code_fails_on_is_handed_back_then_dead_lettered(
    engine_settings: EngineSettings,
    worker_settings: WorkerSettings,
    redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = worker_settings.model_copy(
        update={
            "claim_idle_ms": 100,
            "reclaim_interval_s": 0.05,
            "block_ms": 50,
            "max_deliveries": 2,
        }
    )
    worker = with_a_bug(Worker(CodeLocation.load("tests.code_locations.basic"), settings))
    with caplog.at_level(logging.ERROR, logger="sensors.intake"), running(worker):
        bad = basic.quiet.execute_in_process(settings=engine_settings).run_id
        good = basic.etl.execute_in_process(raise_on_error=False, settings=engine_settings).run_id
        bad_ids = {
            entry_id
            for entry_id, fields in read_stream(redis_client, STREAM)
            if decode_event(fields[b"event"]).run_id == bad
        }

        def dead_lettered() -> set[bytes]:
            letters = read_stream(redis_client, KEYS.dead_letter_stream(0))
            return {f[b"source_id"] for _, f in letters if f[b"reason"] == b"max_deliveries"}

        wait_until(lambda: dead_lettered() == bad_ids, what="the bad run's entries dead-lettered")
        wait_until(lambda: good in notified_runs(), what="the good run handled")
        wait_until(
            lambda: redis_client.xpending(STREAM, HOOKS_GROUP)["pending"] == 0,
            what="nothing pending",
        )
        assert worker.subscriptions[0].held_count == 0
    assert bad not in notified_runs()
    assert "handling failed entry=" in caplog.text
    assert "RuntimeError: a bug in hookbus" in caplog.text  # with its traceback


def test_a_read_loop_hitting_an_unexpected_redis_error_restarts(
    engine_settings: EngineSettings,
    worker_settings: WorkerSettings,
    redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = worker_settings.model_copy(update={"block_ms": 50, "reconnect_max_s": 0.2})
    worker = Worker(CodeLocation.load("tests.code_locations.basic"), settings)
    with caplog.at_level(logging.ERROR, logger="sensors.upkeep"), running(worker):
        wait_until(lambda: redis_client.exists(STREAM), what="the worker's groups")
        # The stream's key turns into a string: a blocked read fails with UNBLOCKED, the
        # next ones with WRONGTYPE (neither is a lost group nor a connection error).
        redis_client.delete(STREAM)
        redis_client.set(STREAM, "not a stream")
        wait_until(lambda: "read loop failed group=hooks" in caplog.text, what="the failure logged")
        redis_client.delete(STREAM)
        run_id = basic.quiet.execute_in_process(settings=engine_settings).run_id

        wait_until(lambda: run_id in notified_runs(), what="the run handled after the restart")
    assert "Traceback" in caplog.text
    assert "redis.exceptions.ResponseError: " in caplog.text
