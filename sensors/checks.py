"""Time-based checks, as Prefect's proactive triggers: alerts on what did *not* happen.

- ``@run_stuck_check``: a run of a job has been running longer than a limit.
- ``@job_freshness_check``: a job has not completed successfully within a window.
- ``@failure_count_check``: a job failed N times or more within a window.

Workers evaluate them periodically (``sensors.check_runner``, one worker at a time under a
lease) and call the decorated function with a ``CheckContext`` once per occurrence; the
function notifies as a hook would (Slack resource, webhook...).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bus.errors import ConfigError
from bus.refs import callable_ref


class CheckKind(StrEnum):
    """What a time-based check looks for."""

    #: A run still running after ``limit``.
    RUN_STUCK = "run_stuck"
    #: No successful run of the job within ``window``.
    NOT_FRESH = "not_fresh"
    #: ``failures`` or more failed runs of the job within ``window``.
    FAILURE_COUNT = "failure_count"


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What a check's function receives when the check fires.

    Attributes:
        check_name: the check's name.
        kind: what it looks for.
        job_name: the job concerned.
        message: one line saying what was seen.
        fired_at: when the check fired (UTC).
        run_id: the run concerned (stuck runs), else ``None``.
        count: how many failures were seen (failure counts), else 0.
        log: a logger for the check.
    """

    check_name: str
    kind: CheckKind
    job_name: str
    message: str
    fired_at: datetime
    run_id: str | None = None
    count: int = 0
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("hookbus.checks"))


@dataclass(frozen=True, slots=True)
class CheckDefinition:
    """A time-based check: what to look for, and the function to call when it is seen."""

    name: str
    fn: Callable[..., Any]
    kind: CheckKind
    job_name: str
    #: How long a run may run (stuck runs) or the window looked at (the others).
    within: timedelta
    #: Failures that make the check fire (failure counts).
    failures: int = 1

    def __post_init__(self) -> None:
        callable_ref(self.fn)

    def __call__(self, context: CheckContext) -> Any:
        return self.fn(context)

    def __repr__(self) -> str:
        return (
            f"<CheckDefinition name={self.name!r} kind={self.kind} job={self.job_name!r} "
            f"within={self.within}>"
        )


CheckDecorator = Callable[[Callable[..., Any]], CheckDefinition]


def _job_name(job: object) -> str:
    return job if isinstance(job, str) else str(getattr(job, "name"))  # noqa: B009


def _check(
    kind: CheckKind, job: object, within: timedelta, name: str | None, failures: int = 1
) -> CheckDecorator:
    def decorate(func: Callable[..., Any]) -> CheckDefinition:
        return CheckDefinition(
            name=name or func.__name__,
            fn=func,
            kind=kind,
            job_name=_job_name(job),
            within=within,
            failures=failures,
        )

    return decorate


def run_stuck_check(
    *, job: object, longer_than: timedelta, name: str | None = None
) -> CheckDecorator:
    """Fire when a run of ``job`` (a definition or a name) runs longer than ``longer_than``."""
    return _check(CheckKind.RUN_STUCK, job, longer_than, name)


def job_freshness_check(
    *, job: object, within: timedelta, name: str | None = None
) -> CheckDecorator:
    """Fire when ``job`` has not completed successfully within the last ``within``."""
    return _check(CheckKind.NOT_FRESH, job, within, name)


def failure_count_check(
    *, job: object, failures: int, within: timedelta, name: str | None = None
) -> CheckDecorator:
    """Fire when ``job`` failed (or crashed) ``failures`` times or more within ``within``.

    Raises:
        ConfigError: ``failures`` is less than 1.
    """
    if failures < 1:
        raise ConfigError(
            f"failure_count_check {name or '<unnamed>'!r} needs failures >= 1: got {failures!r}. "
            "Pass the number of failures that should fire it, e.g. failures=3."
        )
    return _check(CheckKind.FAILURE_COUNT, job, within, name, failures)
