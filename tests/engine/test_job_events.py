"""The engine publishes every transition, in order, and refuses hooks a worker can't run."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import redis

from bus import HookAttachError, Keys, OpEvent, RunEvent
from engine import EngineSettings, RunFailedError, job, op
from sensors import failure_hook
from tests.code_locations import basic
from tests.conftest import TEST_PREFIX
from tests.streams import read_events


def published(client: redis.Redis, run_id: str) -> list[RunEvent | OpEvent]:
    return read_events(client, Keys(prefix=TEST_PREFIX).stream_for_run(run_id))


def transitions(events: list[RunEvent | OpEvent]) -> list[tuple[str, str | None, str]]:
    return [
        (
            event.op.step_key if isinstance(event, OpEvent) else "run",
            None if event.from_state is None else str(event.from_state),
            str(event.to_state),
        )
        for event in events
    ]


def test_a_failing_run_publishes_every_transition_in_order(
    engine_settings: EngineSettings, redis_client: redis.Redis
) -> None:
    result = basic.etl.execute_in_process(raise_on_error=False, settings=engine_settings)
    events = published(redis_client, result.run_id)

    assert transitions(events) == [
        ("run", None, "pending"),
        ("run", "pending", "running"),
        ("extract", None, "running"),
        ("extract", "running", "completed"),
        ("total", None, "running"),
        ("total", "running", "completed"),
        ("explode", None, "running"),
        ("explode", "running", "failed"),
        ("run", "running", "failed"),
    ]
    assert [event.seq for event in events] == list(range(1, 10))
    failed_op = events[7]
    assert failed_op.error is not None
    assert (failed_op.error.type, failed_op.error.message) == ("ValueError", "cannot load 6")
    assert "in explode" in failed_op.error.traceback
    run_error = events[-1].error
    assert run_error is not None and (run_error.type, run_error.message) == (
        "ValueError",
        "cannot load 6",
    )


def test_raise_on_error_raises_with_the_result(engine_settings: EngineSettings) -> None:
    with pytest.raises(
        RunFailedError, match=r"job 'etl' ended failed: ValueError: cannot load 6"
    ) as info:
        basic.etl.execute_in_process(settings=engine_settings)
    assert info.value.result.ops["explode"].state == "failed"


def test_repeated_ops_get_distinct_step_keys(
    engine_settings: EngineSettings, redis_client: redis.Redis
) -> None:
    @job
    def twice() -> None:
        basic.extract()
        basic.extract()

    result = twice.execute_in_process(settings=engine_settings)
    assert sorted(result.ops) == ["extract", "extract_2"]


def test_ops_called_outside_a_job_just_run() -> None:
    assert basic.total([1, 2]) == 3


def module_level_hook(job_def: Any, run: Any, state: Any, **kwargs: Any) -> None:
    """A Prefect-style hook, attachable by reference."""


def test_lambdas_and_closures_are_refused_when_attached() -> None:
    def closure(job_def: Any, run: Any, state: Any) -> None: ...

    with pytest.raises(HookAttachError, match="lambda or a nested function"):
        job(on_failure=[lambda j, r, s: None])(lambda: None)
    with pytest.raises(
        HookAttachError,
        match="'test_lambdas_and_closures_are_refused_when_attached.<locals>.closure'",
    ):
        op(on_failure=[closure])(basic.extract.fn)


def test_non_json_partial_arguments_are_refused_when_attached() -> None:
    with pytest.raises(HookAttachError, match="not JSON"):
        op(on_failure=[partial(module_level_hook, when=object())])(basic.extract.fn)
    with pytest.raises(HookAttachError, match="positional arguments"):
        op(on_failure=[partial(module_level_hook, 1)])(basic.extract.fn)


def test_hooks_set_takes_only_declared_hooks_and_on_lists_only_plain_functions() -> None:
    with pytest.raises(HookAttachError, match="hooks= takes hooks made with @success_hook"):
        job(hooks={module_level_hook})(basic.etl.fn)
    with pytest.raises(HookAttachError, match="takes plain functions"):
        job(on_failure=[basic.on_op_failure])(basic.etl.fn)


def test_declared_hooks_refuse_nested_functions_at_definition() -> None:
    def nested(context: Any) -> None: ...

    with pytest.raises(HookAttachError, match="lambda or a nested function"):
        failure_hook(nested)
