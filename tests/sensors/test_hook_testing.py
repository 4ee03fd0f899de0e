"""Users can unit-test hooks without a worker: build_hook_context and direct calls."""

from __future__ import annotations

import pytest

from sensors import (
    HookContext,
    RunFailureSensorContext,
    build_hook_context,
    build_run_status_sensor_context,
    run_failure_sensor,
)
from tests.code_locations import basic


def test_a_hook_definition_is_callable_with_a_built_context() -> None:
    basic.CALLS.clear()
    context = build_hook_context(op="load", op_exception=ValueError("nope"))

    basic.on_op_failure(context)

    assert basic.CALLS == [("page_on_failure", {"step_key": "load", "exception": "nope"})]
    basic.CALLS.clear()


def test_built_context_exposes_resources_and_config() -> None:
    context = build_hook_context(resources={"slack": "fake"}, op_config={"limit": 3})
    assert isinstance(context, HookContext)
    assert context.resources.slack == "fake"
    assert context.op_config == {"limit": 3}
    assert context.required_resource_keys == frozenset()
    assert repr(context) == (
        "<HookContext job='test_job' run_id='test-run' step_key='test_op' hook=None>"
    )


def test_a_missing_resource_is_an_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="slack"):
        build_hook_context().resources.slack  # noqa: B018


SEEN: list[str] = []


@run_failure_sensor
def report(context: RunFailureSensorContext) -> None:
    error = context.failure_event.error
    SEEN.append(f"{context.run.job_name} {context.run_status}: {error.message if error else ''}")


def test_a_run_failure_sensor_can_be_tested_without_a_worker() -> None:
    context = build_run_status_sensor_context(
        job_name="nightly", error=ValueError("warehouse is read-only")
    ).for_run_failure()
    report(context)

    assert SEEN == ["nightly failed: warehouse is read-only"]
    assert repr(context) == (
        "<RunFailureSensorContext sensor='test_sensor' run_id='test-run' status=failed>"
    )
