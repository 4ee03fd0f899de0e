"""The Prefect "State change hooks" document's examples, ported to hookbus.

``flow``/``task`` become ``job``/``op``; ``flow_run``/``task_run`` the ``JobRun``/``OpRun``
a worker rebuilds from the event. Each hook records what it received (``record``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from engine import job, op
from tests.code_locations.lifecycle import record


def _state(state: Any) -> dict[str, Any]:
    return {"name": state.name, "type": state.type, "message": state.message}


def my_flow_hook(flow: Any, flow_run: Any, state: Any) -> None:
    """This is the required signature for a flow run state change hook."""
    record("my_flow_hook", flow=flow.name, run_id=flow_run.id, state=_state(state))


def my_task_hook(task: Any, task_run: Any, state: Any) -> None:
    """This is the required signature for a task run state change hook."""
    record("my_task_hook", task=task.name, task_run=task_run.name, state=_state(state))


@op(on_failure=[my_task_hook])
def failing_task() -> None:
    raise ValueError("task failed")


@job(on_completion=[my_flow_hook])
def completes() -> None:
    pass


@job
def task_fails() -> None:
    failing_task(return_state=True)


def my_success_hook(task: Any, task_run: Any, state: Any) -> None:
    record("my_success_hook", task=task.name, state=state.name)


def my_failure_hook(task: Any, task_run: Any, state: Any) -> None:
    record("my_failure_hook", task=task.name, state=state.name)


def my_succeed_or_fail_hook(task: Any, task_run: Any, state: Any) -> None:
    record("my_succeed_or_fail_hook", task=task.name, state=state.name)


@op(
    on_completion=[my_success_hook, my_succeed_or_fail_hook],
    on_failure=[my_failure_hook, my_succeed_or_fail_hook],
)
def multi_hooked(fail: bool) -> str:
    if fail:
        raise RuntimeError("asked to fail")
    return "ok"


@job
def multiple_hooks() -> None:
    multi_hooked(False)
    multi_hooked(True, return_state=True)


def my_hook(flow: Any, flow_run: Any, state: Any, my_arg: str = "custom_value") -> None:
    record("my_hook", my_arg=my_arg, state=_state(state))


@job(on_completion=[my_hook])
def lazy_flow() -> None:
    pass


def my_kwargs_hook(task: Any, task_run: Any, state: Any, **kwargs: Any) -> None:
    record("my_kwargs_hook", task=task.name, state=_state(state), **kwargs)


@op
def bad_task() -> None:
    raise ValueError("meh")


@job
def ok_with_failure_flow(x: str = "foo", y: int = 42) -> tuple[str, Any]:
    bad_task_with_a_hook = bad_task.with_options(
        on_failure=[partial(my_kwargs_hook, **dict(x=x, y=y))]
    )
    # return a tuple of "bar" and the task run state
    # to avoid raising the task's exception
    return "bar", bad_task_with_a_hook(return_state=True)


def notify_slack(flow: Any, flow_run: Any, state: Any) -> None:
    record(
        "notify_slack",
        text=(
            f"Your job {flow_run.name} entered {state.name} "
            f"with message:\n\n{state.message}\n\n"
            f"See <https://hookbus.example/flow-runs/flow-run/{flow_run.id}|the flow run>\n\n"
            f"Tags: {flow_run.tags}\n\n"
            f"Scheduled start: {flow_run.expected_start_time}"
        ),
        run_count=flow_run.run_count,
        parameters=flow_run.parameters,
    )


@job(on_failure=[notify_slack], retries=1, tags={"team": "data"})
def failing_flow() -> None:
    raise ValueError("oops!")


async def delete_cloud_run_job(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow run state change hook that cleans up if the flow run crashes (async)."""
    record("delete_cloud_run_job", flow=flow.name, run_name=flow_run.name, state=_state(state))


@op
def my_task_that_crashes() -> None:
    raise SystemExit("Crashing on purpose!")


@job(on_crashed=[delete_cloud_run_job])
def crashing_flow() -> None:
    my_task_that_crashes()


def on_running_hook(definition: Any, run: Any, state: Any) -> None:
    """Both a job-level and an op-level ``on_running`` hook (one hook, two places)."""
    record("on_running_hook", of=definition.name, state=state.name, attempt=run.run_count)


@op(on_running=[on_running_hook])
def starts() -> None:
    pass


@job(on_running=[on_running_hook])
def running_hooks() -> None:
    starts()
