"""The states a run and an op move through; both the engine and the workers speak them."""

from __future__ import annotations

from enum import StrEnum


class RunState(StrEnum):
    """The life of one job run."""

    #: Created, not started yet.
    PENDING = "pending"
    #: The job's body is executing.
    RUNNING = "running"
    #: Every op finished and the body returned.
    COMPLETED = "completed"
    #: An attempt of the body failed and another one is scheduled (``@job(retries=N)``).
    RETRYING = "retrying"
    #: An op (or the body) raised after its retries were used up.
    FAILED = "failed"
    #: A cancel was requested; the run stops at the next op boundary.
    CANCELLING = "cancelling"
    #: The run stopped on request.
    CANCELLED = "cancelled"
    #: The run's process died or exited abnormally (signal, SystemExit, lost heartbeat).
    CRASHED = "crashed"

    @property
    def is_terminal(self) -> bool:
        """Whether no further transition can follow."""
        return self in _TERMINAL_RUN_STATES


class OpState(StrEnum):
    """The life of one op invocation inside a run."""

    #: Known to the run, not started yet.
    PENDING = "pending"
    #: The op's function is executing (``attempt`` says which try).
    RUNNING = "running"
    #: The attempt failed and another one is scheduled.
    RETRYING = "retrying"
    #: The op returned.
    COMPLETED = "completed"
    #: The last attempt raised.
    FAILED = "failed"
    #: The op did not run because an upstream op failed or the run stopped.
    SKIPPED = "skipped"
    #: The op was interrupted by a cancel.
    CANCELLED = "cancelled"
    #: The op's process died while it ran.
    CRASHED = "crashed"

    @property
    def is_terminal(self) -> bool:
        """Whether no further transition can follow."""
        return self in _TERMINAL_OP_STATES


_TERMINAL_RUN_STATES = frozenset(
    {RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED, RunState.CRASHED}
)
_TERMINAL_OP_STATES = frozenset(
    {OpState.COMPLETED, OpState.FAILED, OpState.SKIPPED, OpState.CANCELLED, OpState.CRASHED}
)
