"""What ``return_state=True`` returns: a run's or an op's final state, with its result.

The Prefect shape: ``state = bad_task(return_state=True)`` does not raise; ``state.name``
is ``"Failed"``, ``state.is_failed()`` is true, and ``state.result()`` raises the op's
exception (or returns its output when it completed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bus.events import ErrorInfo, utc_now
from bus.states import OpState, RunState


@dataclass(frozen=True, slots=True)
class State:
    """A final run or op state, in this process (it keeps the original exception).

    Attributes:
        type: the ``RunState``/``OpState``.
        message: why, e.g. ``"ValueError: meh"``.
        timestamp: when it was reached (UTC).
        data: the body's or op's return value, when it completed.
        error: the exception as data, when it failed.
        exception: the original exception object (never sent anywhere).
        step_key: the op invocation it belongs to (``None`` for a run).
        attempts: how many attempts it took.
    """

    type: OpState | RunState
    message: str = ""
    timestamp: datetime = field(default_factory=utc_now)
    data: Any = None
    error: ErrorInfo | None = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)
    step_key: str | None = None
    attempts: int = 1

    @property
    def name(self) -> str:
        """The display name, as Prefect's: ``"Completed"``, ``"Failed"`` …"""
        return self.type.value.capitalize()

    def is_completed(self) -> bool:
        return self.type in (OpState.COMPLETED, RunState.COMPLETED)

    def is_failed(self) -> bool:
        return self.type in (OpState.FAILED, RunState.FAILED)

    def is_crashed(self) -> bool:
        return self.type in (OpState.CRASHED, RunState.CRASHED)

    def is_cancelled(self) -> bool:
        return self.type in (OpState.CANCELLED, RunState.CANCELLED)

    def is_skipped(self) -> bool:
        return self.type is OpState.SKIPPED

    def result(self, *, raise_on_failure: bool = True) -> Any:
        """The output; re-raises the exception when the state is not completed."""
        if self.exception is not None and raise_on_failure:
            raise self.exception
        return self.data
