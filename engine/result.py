"""What running a job returns: the run's final state, each op's state and outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bus.events import ErrorInfo
from bus.states import OpState, RunState


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
    """A finished run, as ``execute_in_process`` returns it."""

    run_id: str
    job_name: str
    state: RunState
    ops: dict[str, OpResult] = field(default_factory=dict)
    output: Any = None
    error: ErrorInfo | None = None

    @property
    def success(self) -> bool:
        """Whether the run completed."""
        return self.state is RunState.COMPLETED

    def __repr__(self) -> str:
        return (
            f"<RunResult run_id={self.run_id!r} job={self.job_name!r} state={self.state} "
            f"ops={len(self.ops)}>"
        )
