"""The worker, in-process and in burst mode: hooks, sensors, idempotency, dead letters."""

from __future__ import annotations

import asyncio
import dataclasses
import types
from collections.abc import Iterator

import pytest
import redis

from bus import (
    HOOKS_GROUP,
    HookRef,
    Keys,
    OpEvent,
    OpInfo,
    OpState,
    RunInfo,
    RunState,
    encode_event,
)
from engine import EngineSettings
from sensors import CodeLocation, CodeLocationError, Worker, WorkerSettings
from tests.code_locations import basic
from tests.conftest import TEST_PREFIX
from tests.streams import read_stream

KEYS = Keys(prefix=TEST_PREFIX)


@pytest.fixture(autouse=True)
def clear_calls() -> Iterator[None]:
    basic.CALLS.clear()
    yield
    basic.CALLS.clear()


def run_worker_until_idle(settings: WorkerSettings) -> Worker:
    async def burst() -> Worker:
        worker = Worker(CodeLocation.load("tests.code_locations.basic"), settings)
        try:
            await worker.run_until_idle()
        finally:
            await worker.close()
        return worker

    return asyncio.run(burst())


def dead_letters(client: redis.Redis) -> list[dict[bytes, bytes]]:
    stream = KEYS.dead_letter_for(KEYS.events_stream(0))
    return [fields for _, fields in read_stream(client, stream)]


def prepare(worker_settings: WorkerSettings) -> None:
    """Create the groups at the stream's start, as a running worker would have."""
    asyncio.run(_prepare(worker_settings))


async def _prepare(worker_settings: WorkerSettings) -> None:
    worker = Worker(CodeLocation.load("tests.code_locations.basic"), worker_settings)
    await worker.start()
    await worker.close()


def test_dagster_and_prefect_style_hooks_run_with_their_context(
    engine_settings: EngineSettings, worker_settings: WorkerSettings
) -> None:
    prepare(worker_settings)
    result = basic.etl.execute_in_process(raise_on_error=False, settings=engine_settings)
    assert result.state is RunState.FAILED

    run_worker_until_idle(worker_settings)

    calls = sorted(basic.CALLS, key=lambda call: (call[0], str(call[1])))
    assert calls == [
        ("async_op_hook", {"op": "total", "state": "Completed", "tier": "gold"}),
        ("etl_failures", {"run_id": result.run_id, "error": "ValueError"}),
        ("notify", {"job": "etl", "run_id": result.run_id, "state": "Failed", "channel": "#etl"}),
        ("on_op_success", {"step_key": "extract", "outputs": {"result": [1, 2, 3]}}),
        ("on_op_success", {"step_key": "total", "outputs": {"result": 6}}),
        ("page_on_failure", {"step_key": "explode", "exception": "ValueError: cannot load 6"}),
    ]


def move_groups_back(client: redis.Redis) -> None:
    """Every group of the basic location back to the stream's start, as an operator's
    XGROUP SETID would: every entry is delivered again, as new."""
    for group in (HOOKS_GROUP, KEYS.sensor_group("etl_failures")):
        client.xgroup_setid(KEYS.events_stream(0), group, "0")


def test_redelivered_events_do_not_repeat_hooks_that_succeeded(
    engine_settings: EngineSettings, worker_settings: WorkerSettings, redis_client: redis.Redis
) -> None:
    prepare(worker_settings)
    basic.etl.execute_in_process(raise_on_error=False, settings=engine_settings)

    async def twice() -> int:
        worker = Worker(CodeLocation.load("tests.code_locations.basic"), worker_settings)
        try:
            await worker.run_until_idle()
            handled = len(basic.CALLS)
            move_groups_back(redis_client)  # while the worker runs
            await worker.run_until_idle()
        finally:
            await worker.close()
        return handled

    first = asyncio.run(twice())

    assert first == 6
    assert len(basic.CALLS) == first


def test_a_worker_started_after_the_groups_were_moved_back_repeats_nothing(
    engine_settings: EngineSettings, worker_settings: WorkerSettings, redis_client: redis.Redis
) -> None:
    prepare(worker_settings)
    basic.etl.execute_in_process(raise_on_error=False, settings=engine_settings)
    run_worker_until_idle(worker_settings)
    first = len(basic.CALLS)

    move_groups_back(redis_client)  # while no worker runs: the read mark remembers
    run_worker_until_idle(worker_settings)

    assert first == 6
    assert len(basic.CALLS) == first


def test_a_failing_hook_is_dead_lettered_and_does_not_stop_the_others(
    engine_settings: EngineSettings, worker_settings: WorkerSettings, redis_client: redis.Redis
) -> None:
    prepare(worker_settings)
    basic.with_broken_hook.execute_in_process(raise_on_error=False, settings=engine_settings)
    worker = run_worker_until_idle(worker_settings.model_copy(update={"retry_base_s": 0.01}))

    assert [name for name, _ in basic.CALLS] == ["page_on_failure"]
    [letter] = dead_letters(redis_client)
    assert letter[b"reason"] == b"handler_failed"
    assert letter[b"handler"] == b"hook:tests.code_locations.basic:broken_hook"
    assert b"RuntimeError: this hook is broken" in letter[b"error"]
    assert worker.dispatcher.failed == 1


def test_poison_entries_are_dead_lettered_and_the_worker_keeps_going(
    engine_settings: EngineSettings, worker_settings: WorkerSettings, redis_client: redis.Redis
) -> None:
    prepare(worker_settings)
    redis_client.xadd(KEYS.events_stream(0), {b"event": b"{garbage"})
    redis_client.xadd(KEYS.events_stream(0), {b"something": b"else"})
    basic.quiet.execute_in_process(settings=engine_settings)

    run_worker_until_idle(worker_settings)

    reasons = sorted(letter[b"reason"] for letter in dead_letters(redis_client))
    assert reasons == [b"invalid_json", b"missing_event_field"]
    notified = [details for name, details in basic.CALLS if name == "notify"]
    assert [(n["job"], n["state"]) for n in notified] == [("quiet", "Completed")]
    assert redis_client.xpending(KEYS.events_stream(0), HOOKS_GROUP)["pending"] == 0


def test_an_event_naming_an_unknown_hook_is_dead_lettered(
    worker_settings: WorkerSettings, redis_client: redis.Redis
) -> None:
    prepare(worker_settings)
    event = OpEvent(
        seq=1,
        run=RunInfo(run_id="r", run_name="r", job_name="etl"),
        op=OpInfo(name="x", step_key="x"),
        hooks=(HookRef(ref="os:system", name="system", style="state", on=("failed",)),),
        from_state=OpState.RUNNING,
        to_state=OpState.FAILED,
    )
    redis_client.xadd(KEYS.events_stream(0), {b"event": encode_event(event)})

    run_worker_until_idle(worker_settings)

    [letter] = dead_letters(redis_client)
    assert letter[b"reason"] == b"unknown_hook"
    assert b"'os:system' is not defined in code location" in letter[b"error"]


def test_worker_repr_counts_what_it_did(worker_settings: WorkerSettings) -> None:
    worker = run_worker_until_idle(worker_settings)
    assert repr(worker) == (
        "<Worker consumer='test-worker' location='tests.code_locations.basic' handled=0 "
        "succeeded=0 retried=0 failed=0 held=0>"
    )
    assert repr(worker.intake) == "<Intake tasks=0 handled=0>"
    assert repr(worker.threads) == "<HookThreads name='hookbus-hook' size=16 spare=16 abandoned=0>"


def test_an_event_cannot_run_a_package_function_no_job_attaches(
    worker_settings: WorkerSettings, redis_client: redis.Redis
) -> None:
    prepare(worker_settings)
    event = OpEvent(
        seq=1,
        run=RunInfo(run_id="r", run_name="r", job_name="etl"),
        op=OpInfo(name="x", step_key="x"),
        hooks=(
            HookRef(
                ref="tests.code_locations.basic:drop_tables",
                name="drop_tables",
                style="state",
                on=("failed",),
            ),
        ),
        from_state=OpState.RUNNING,
        to_state=OpState.FAILED,
    )
    redis_client.xadd(KEYS.events_stream(0), {b"event": encode_event(event)})

    run_worker_until_idle(worker_settings)

    assert basic.CALLS == []
    [letter] = dead_letters(redis_client)
    assert letter[b"reason"] == b"unknown_hook"


def test_two_sensors_with_one_name_are_refused_when_the_location_loads() -> None:
    module = types.ModuleType("twin_sensors")
    module.first = basic.etl_failures  # type: ignore[attr-defined]
    module.second = dataclasses.replace(basic.etl_failures, fn=basic.notify)  # type: ignore[attr-defined]
    with pytest.raises(CodeLocationError, match="sensor name 'etl_failures' is used twice"):
        CodeLocation.from_module(module)


def test_a_stop_while_waiting_for_redis_at_start_ends_the_worker_at_once() -> None:
    # A Ctrl-C in a terminal stops the demo's private Redis and the worker together: a
    # worker still waiting for that Redis to come back must not wait out its hard stop.
    from bus.redis_server import free_port

    settings = WorkerSettings(
        redis_url=f"redis://127.0.0.1:{free_port()}/0", key_prefix=TEST_PREFIX, redis_timeout_s=1
    )

    async def main() -> float:
        worker = Worker(CodeLocation.load("tests.code_locations.basic"), settings)
        running = asyncio.ensure_future(worker.run())
        await asyncio.sleep(0.3)  # retrying its start: nothing listens there
        asked = asyncio.get_running_loop().time()
        worker.stop()
        await asyncio.wait_for(running, timeout=5)
        await worker.close()
        return asyncio.get_running_loop().time() - asked

    assert asyncio.run(main()) < 2.0
