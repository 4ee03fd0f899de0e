"""Hung sync hooks: their threads are abandoned and replaced, so other hooks still run."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from prometheus_client import REGISTRY

from bus import Keys, ResourceInitContext
from engine import EngineSettings, job, op, resource
from sensors import CodeLocation, Worker, WorkerSettings
from sensors.boundary import call_user_code
from sensors.handlers import Handler
from sensors.hook_threads import HookThreads
from sensors.resources import ResourceBuilder
from tests.code_locations import hung
from tests.conftest import TEST_PREFIX
from tests.processes import wait_until
from tests.streams import read_stream

KEYS = Keys(prefix=TEST_PREFIX)


@pytest.fixture(autouse=True)
def reset_hung() -> Iterator[None]:
    hung.RELEASE.clear()
    hung.QUICK.clear()
    yield
    hung.RELEASE.set()  # let abandoned threads end
    hung.QUICK.clear()


def test_two_hung_hooks_do_not_make_a_quick_one_time_out(
    engine_settings: EngineSettings,
    worker_settings: WorkerSettings,
    redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = worker_settings.model_copy(
        update={"concurrency": 2, "handler_timeout_s": 0.3, "handler_max_attempts": 1}
    )

    async def burst() -> Worker:
        worker = Worker(CodeLocation.load("tests.code_locations.hung"), settings)
        try:
            await worker.start()
            await asyncio.to_thread(
                hung.with_hung_hooks.execute_in_process,
                raise_on_error=False,
                settings=engine_settings,
            )
            await worker.run_until_idle()
        finally:
            await worker.close()
        return worker

    with caplog.at_level(logging.WARNING, logger="sensors.hook_threads"):
        worker = asyncio.run(burst())

    assert hung.QUICK == ["explode"]
    letters = [fields for _, fields in read_stream(redis_client, KEYS.dead_letter_stream(0))]
    assert sorted(letter[b"handler"] for letter in letters) == [
        b"hook:tests.code_locations.hung:hang_a",
        b"hook:tests.code_locations.hung:hang_b",
    ]
    assert worker.threads.abandoned == 2
    assert "hook thread abandoned handler=hook:tests.code_locations.hung:hang_a" in caplog.text
    hung.RELEASE.set()
    wait_until(lambda: worker.threads.abandoned == 0, what="the abandoned threads to return")


def test_the_time_limit_starts_when_the_call_runs_not_while_it_waits() -> None:
    def busy() -> str:
        time.sleep(0.4)
        return "busy"

    async def main() -> list[str]:
        pool = HookThreads(1, spare=0)
        try:
            return list(
                await asyncio.gather(
                    call_user_code(
                        busy, handler="a", event_id="e", attempt=1, timeout_s=2, threads=pool
                    ),
                    # Waits 0.4 s for the only thread, then runs well within its 0.2 s.
                    call_user_code(
                        str,
                        "quick",
                        handler="b",
                        event_id="e",
                        attempt=1,
                        timeout_s=0.2,
                        threads=pool,
                    ),
                )
            )
        finally:
            pool.close()

    assert asyncio.run(main()) == ["busy", "quick"]


def test_an_abandoned_thread_is_counted_until_its_call_returns() -> None:
    release = threading.Event()

    def gauge() -> float | None:
        return REGISTRY.get_sample_value(
            "hookbus_hook_threads_abandoned", {"pool": "test-abandoned"}
        )

    async def main() -> HookThreads:
        pool = HookThreads(1, spare=1, name="test-abandoned")
        with pytest.raises(TimeoutError):
            await pool.run(lambda: release.wait(10), handler="hook:m:stuck", timeout_s=0.05)
        assert await pool.run(lambda: "fine", handler="hook:m:ok", timeout_s=1) == "fine"
        return pool

    pool = asyncio.run(main())
    assert (pool.abandoned, gauge()) == (1, 1.0)
    release.set()
    wait_until(lambda: pool.abandoned == 0, what="the abandoned call to return")
    assert gauge() == 0.0
    pool.close()


@resource
def thread_name(init_context: ResourceInitContext) -> str:
    return threading.current_thread().name


@op
def nothing() -> None:
    return None


@job(resource_defs={"where": thread_name})
def with_resource() -> None:
    nothing()


def test_sync_resource_factories_run_on_the_hook_threads() -> None:
    location = CodeLocation(module_name=__name__, jobs={"with_resource": with_resource})
    handler = Handler(
        name="hook:m:uses_resource",
        fn=print,
        build_args=lambda resources: (),
        resource_keys=frozenset({"where"}),
        job_name="with_resource",
    )

    async def main() -> Any:
        pool = HookThreads(1, spare=0, name="test-resources")
        builder = ResourceBuilder(location, env={}, timeout_s=5, threads=pool)
        try:
            return await builder.build(handler, event_id="1-0", attempt=1)
        finally:
            pool.close()

    assert asyncio.run(main())["where"].startswith("test-resources")
