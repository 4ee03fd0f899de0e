"""Which run the current code is executing in, so calling an op inside a job runs it."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.run import Run

_current_run: ContextVar[Run | None] = ContextVar("hookbus_current_run", default=None)


def current_run() -> Run | None:
    """The run whose job body is executing in this context, if any."""
    return _current_run.get()


def enter_run(run: Run) -> object:
    """Make ``run`` current; return a token for ``leave_run``."""
    return _current_run.set(run)


def leave_run(token: object) -> None:
    """Undo ``enter_run``."""
    _current_run.reset(token)  # type: ignore[arg-type]
