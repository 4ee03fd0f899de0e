"""The ``(job, run, state)`` arguments a Prefect-style hook receives, built from an event."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import JsonValue

from bus.events import ErrorInfo, OpEvent, RunEvent


@dataclass(frozen=True, slots=True)
class State:
    """A run's or op's new state, as Prefect's ``State``: ``state.name == "Failed"``.

    Attributes:
        type: the state value, e.g. ``"failed"`` (a ``RunState``/``OpState`` string).
        name: its display name, e.g. ``"Failed"``.
        message: why, e.g. the error message.
        timestamp: when the transition happened (UTC).
        error: the error, when the state is a failure.
    """

    type: str
    name: str
    message: str
    timestamp: datetime
    error: ErrorInfo | None = None

    def is_failed(self) -> bool:
        return self.type == "failed"

    def is_completed(self) -> bool:
        return self.type == "completed"

    def is_crashed(self) -> bool:
        return self.type == "crashed"

    def is_cancelled(self) -> bool:
        return self.type in ("cancelled", "cancelling")


@dataclass(frozen=True, slots=True)
class JobRun:
    """A run, as Prefect's ``flow_run``: ``id``, ``name``, ``tags``, ``expected_start_time``."""

    id: str
    name: str
    job_name: str
    tags: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, JsonValue] = field(default_factory=dict)
    start_time: datetime | None = None
    attempt: int = 1

    @property
    def expected_start_time(self) -> datetime | None:
        return self.start_time

    @property
    def run_count(self) -> int:
        return self.attempt


@dataclass(frozen=True, slots=True)
class OpRun:
    """An op invocation, as Prefect's ``task_run``."""

    id: str
    name: str
    op_name: str
    step_key: str
    run_id: str
    attempt: int
    tags: dict[str, str] = field(default_factory=dict)
    config: dict[str, JsonValue] = field(default_factory=dict)
    outputs: dict[str, JsonValue] = field(default_factory=dict)

    @property
    def run_count(self) -> int:
        return self.attempt


@dataclass(frozen=True, slots=True)
class DefinitionStub:
    """Stands in for a job/op definition the worker's code location does not hold."""

    name: str


def state_of(event: RunEvent | OpEvent) -> State:
    """The ``State`` an event moved to."""
    message = event.message or (f"{event.error.type}: {event.error.message}" if event.error else "")
    return State(
        type=event.to_state.value,
        name=event.to_state.value.capitalize(),
        message=message,
        timestamp=event.occurred_at,
        error=event.error,
    )


def job_run_of(event: RunEvent | OpEvent) -> JobRun:
    """The ``JobRun`` an event belongs to."""
    run = event.run
    return JobRun(
        id=run.run_id,
        name=run.run_name,
        job_name=run.job_name,
        tags=dict(run.tags),
        parameters=dict(run.parameters),
        start_time=run.started_at,
        attempt=run.attempt,
    )


def op_run_of(event: OpEvent) -> OpRun:
    """The ``OpRun`` an op event is about."""
    return OpRun(
        id=f"{event.run_id}.{event.op.step_key}",
        name=f"{event.op.step_key}-{event.run_id[:8]}",
        op_name=event.op.name,
        step_key=event.op.step_key,
        run_id=event.run_id,
        attempt=event.op.attempt,
        tags=dict(event.run.tags),
        config=dict(event.op.config),
        outputs=dict(event.op.outputs),
    )


def state_hook_args(event: RunEvent | OpEvent, definition: Any) -> tuple[Any, Any, State]:
    """``(job, flow_run, state)`` for a run event or ``(op, task_run, state)`` for an op."""
    if isinstance(event, OpEvent):
        return definition, op_run_of(event), state_of(event)
    return definition, job_run_of(event), state_of(event)
