"""What running a job returns: the run's final state, each op's state and outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bus.events import ErrorInfo
from bus.states import OpState, RunState
from engine.state import State


@dataclass(frozen=True, slots=True)
class OpResult:
    """One op invocation's outcome."""

    step_key: str
    state: OpState
    attempts: int
    output: Any = None
    error: ErrorInfo | None = None


@dataclass(frozen=True, slots=True)
class RunResult:
    """A finished run, as ``execute_in_process`` returns it (Dagster's result).

    Attributes:
        run_id: the run's id.
        job_name: the job.
        state: the run's final state.
        ops: each op invocation's outcome, by step key.
        output: the job body's return value.
        error: the exception as data, when the run failed.
        exception: the original exception (in this process only).
    """

    run_id: str
    job_name: str
    state: RunState
    ops: dict[str, OpResult] = field(default_factory=dict)
    output: Any = None
    error: ErrorInfo | None = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def success(self) -> bool:
        """Whether the run completed."""
        return self.state is RunState.COMPLETED

    def output_for_op(self, step_key: str) -> Any:
        """The output of one op invocation (Dagster's ``result.output_for_node``)."""
        return self.ops[step_key].output

    def as_state(self) -> State:
        """The run's final state, as ``job(return_state=True)`` returns it."""
        message = f"{self.error.type}: {self.error.message}" if self.error else ""
        return State(
            type=self.state,
            message=message,
            data=self.output,
            error=self.error,
            exception=self.exception,
        )

    def __repr__(self) -> str:
        return (
            f"<RunResult run_id={self.run_id!r} job={self.job_name!r} state={self.state} "
            f"ops={len(self.ops)}>"
        )
