"""A code location exercising both hook styles and a sensor; hooks record their calls."""

from __future__ import annotations

from functools import partial
from typing import Any

from engine import job, op
from sensors import (
    HookContext,
    RunFailureSensorContext,
    failure_hook,
    run_failure_sensor,
    success_hook,
)

#: Every hook call, in order, as (hook name, details). In-process tests read it.
CALLS: list[tuple[str, dict[str, Any]]] = []


@success_hook
def on_op_success(context: HookContext) -> None:
    CALLS.append(
        ("on_op_success", {"step_key": context.step_key, "outputs": context.op_output_values})
    )


@failure_hook(name="page_on_failure")
def on_op_failure(context: HookContext) -> None:
    exc = context.op_exception
    CALLS.append(("page_on_failure", {"step_key": context.step_key, "exception": str(exc)}))


@failure_hook
def broken_hook(context: HookContext) -> None:
    raise RuntimeError("this hook is broken")


def notify(job_def: Any, run: Any, state: Any, channel: str = "#default") -> None:
    CALLS.append(
        ("notify", {"job": job_def.name, "run_id": run.id, "state": state.name, "channel": channel})
    )


async def async_op_hook(op_def: Any, op_run: Any, state: Any, **kwargs: Any) -> None:
    CALLS.append(("async_op_hook", {"op": op_def.name, "state": state.name, **kwargs}))


@op
def extract() -> list[int]:
    return [1, 2, 3]


@op(on_completion=[partial(async_op_hook, tier="gold")])
def total(rows: list[int]) -> int:
    return sum(rows)


@op
def explode(value: int) -> None:
    raise ValueError(f"cannot load {value}")


@job(hooks={on_op_success, on_op_failure}, on_failure=[partial(notify, channel="#etl")])
def etl() -> None:
    explode(total(extract()))


@job(hooks={broken_hook, on_op_failure})
def with_broken_hook() -> None:
    explode(1)


@job(on_completion=[notify])
def quiet() -> int:
    return total(extract())  # type: ignore[no-any-return]


@run_failure_sensor(monitored_jobs=[etl])
def etl_failures(context: RunFailureSensorContext) -> None:
    error = context.failure_event.error
    CALLS.append(
        ("etl_failures", {"run_id": context.run.run_id, "error": error.type if error else None})
    )


def drop_tables(job_def: Any, run: Any, state: Any) -> None:
    """A helper no job attaches as a hook: an event must never be able to run it."""
    CALLS.append(("drop_tables", {}))
