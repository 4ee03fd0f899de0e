"""Time-based checks, as Prefect's proactive triggers: alerts on what did *not* happen.

- ``@run_stuck_check``: a run of a job has been running (or pending) longer than a limit.
- ``@job_freshness_check``: a job has not completed successfully within a window.
- ``@failure_count_check``: a job failed N times or more within a window.

One worker at a time evaluates them periodically (``sensors.check_runner``) and publishes
a ``bus.events.CheckEvent`` per occurrence. Workers then handle it like any other event:
the check's function runs as a handler in the ``hooks`` group (ledger, retries, dead
letters, time limit, resources) with a ``CheckContext``, and notification rules that
watch the job alert on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from bus.errors import ConfigError
from bus.events import CheckEvent, CheckKind, RunInfo
from bus.refs import callable_ref, job_name_of
from bus.states import RunState


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
        failures: how many failures make the check fire (failure counts), else ``None``.
        log: a logger for the check.
        within: the check's limit (stuck runs) or window (the others).
        run: the stuck run (its name, tags, parameters), else ``None``.
        run_state: the state the run is stuck in, else ``None``.
        state_since: when the run entered that state, else ``None``.
        resources: the resources named in ``required_resource_keys``.
        event_id: the check event's id (stable per occurrence: an idempotency key for
            whatever the function sends).
        failed_run_ids: the newest few failed runs counted (failure counts).
        failed_run_names: their names, in the same order (failure counts).
        last_error: the newest counted failure's error message, if known (failure counts).
        last_success_at: when the job last succeeded, if known (freshness).
        watching_since: when the check began watching the job (freshness).
    """

    check_name: str
    kind: CheckKind
    job_name: str
    message: str
    fired_at: datetime
    run_id: str | None = None
    count: int = 0
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("hookbus.checks"))
    within: timedelta = timedelta(0)
    run: RunInfo | None = None
    run_state: RunState | None = None
    state_since: datetime | None = None
    resources: Any = field(default_factory=SimpleNamespace)
    event_id: str = ""
    failures: int | None = None
    failed_run_ids: tuple[str, ...] = ()
    failed_run_names: tuple[str, ...] = ()
    last_error: str | None = None
    last_success_at: datetime | None = None
    watching_since: datetime | None = None

    def __repr__(self) -> str:
        run = f" run_id={self.run_id!r}" if self.run_id is not None else ""
        return (
            f"<CheckContext check={self.check_name!r} kind={self.kind} job={self.job_name!r}"
            f"{run} event_id={self.event_id!r}>"
        )


def check_context_from_event(
    event: CheckEvent, *, resources: Mapping[str, Any] | None = None
) -> CheckContext:
    """The context a check's function gets for ``event`` (in a worker, or in a test)."""
    return CheckContext(
        check_name=event.check_name,
        kind=event.kind,
        job_name=event.job_name,
        message=event.message,
        fired_at=event.occurred_at,
        run_id=event.run_id,
        count=event.count,
        log=logging.getLogger(f"hookbus.checks.{event.check_name}"),
        within=timedelta(seconds=event.within_s),
        run=event.run,
        run_state=event.run_state,
        state_since=event.state_since,
        resources=SimpleNamespace(**(resources or {})),
        event_id=event.event_id,
        failures=event.failures,
        failed_run_ids=event.failed_run_ids,
        failed_run_names=event.failed_run_names,
        last_error=event.last_error,
        last_success_at=event.last_success_at,
        watching_since=event.watching_since,
    )


@dataclass(frozen=True, slots=True)
class CheckDefinition:
    """A time-based check: what to look for, and the function to call when it is seen.

    Attributes:
        name: unique in the code location; check events name the check by it.
        fn: the decorated function, ``fn(context)``; sync or async.
        kind: what it looks for.
        job_name: the job watched.
        within: how long a run may stay in ``states`` (stuck runs), or the window looked
            at (the others).
        failures: failures that make the check fire (failure counts).
        states: the run states a stuck run is caught in (stuck runs).
        repeat_every: how often a run still stuck fires again (stuck runs); ``None``
            (default): once per run and state.
        required_resource_keys: resources the worker builds for the function: from the
            job's ``resource_defs`` when the code location defines the job, else from
            ``Definitions(resources=...)``.
    """

    name: str
    fn: Callable[..., Any]
    kind: CheckKind
    job_name: str
    within: timedelta
    failures: int = 1
    states: frozenset[RunState] = frozenset({RunState.RUNNING})
    repeat_every: timedelta | None = None
    required_resource_keys: frozenset[str] = frozenset()

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
#: The decorator of each kind, for error messages.
_DECORATOR = {
    CheckKind.RUN_STUCK: "run_stuck_check",
    CheckKind.NOT_FRESH: "job_freshness_check",
    CheckKind.FAILURE_COUNT: "failure_count_check",
}
#: The states a run can be stuck in: it has started nothing yet, or is still going.
STUCK_STATES = frozenset(
    {RunState.PENDING, RunState.RUNNING, RunState.RETRYING, RunState.CANCELLING}
)


def _check(
    kind: CheckKind,
    job: object,
    within: timedelta,
    name: str | None,
    required_resource_keys: Iterable[str],
    **options: Any,
) -> CheckDecorator:
    def decorate(func: Callable[..., Any]) -> CheckDefinition:
        check_name = name or func.__name__
        return CheckDefinition(
            name=check_name,
            fn=func,
            kind=kind,
            job_name=job_name_of(job, where=f"{_DECORATOR[kind]} {check_name!r}"),
            within=within,
            required_resource_keys=frozenset(required_resource_keys),
            **options,
        )

    return decorate


def run_stuck_check(
    *,
    job: object,
    longer_than: timedelta,
    state: RunState | Iterable[RunState] = RunState.RUNNING,
    repeat_every: timedelta | None = None,
    name: str | None = None,
    required_resource_keys: Iterable[str] = (),
) -> CheckDecorator:
    """Fire when a run of ``job`` (a definition or a name) stays in ``state`` longer than
    ``longer_than``.

    A run fires once per state it is stuck in (a pending alert does not hide a later
    running stall), and again every ``repeat_every`` while it stays stuck if given.

    Args:
        state: the state(s) to watch: ``RUNNING`` (default), ``PENDING`` (a run that never
            started), ``RETRYING`` or ``CANCELLING``, or several.
        repeat_every: fire again this often while the run stays stuck; ``None`` (default):
            once.

    Raises:
        ConfigError: ``state`` is empty or includes a terminal state, or ``repeat_every``
            is not positive.
    """
    states = frozenset([state] if isinstance(state, RunState) else state)
    if not states or not states <= STUCK_STATES:
        raise ConfigError(
            f"run_stuck_check {name or '<unnamed>'!r} watches states a run cannot be stuck "
            f"in: got {sorted(states)}. Use one or more of {sorted(STUCK_STATES)}, e.g. "
            "state=RunState.PENDING."
        )
    if repeat_every is not None and repeat_every <= timedelta(0):
        raise ConfigError(
            f"run_stuck_check {name or '<unnamed>'!r} repeats every non-positive interval: "
            f"got {repeat_every!r}. Pass a positive timedelta, or None to fire once."
        )
    return _check(
        CheckKind.RUN_STUCK,
        job,
        longer_than,
        name,
        required_resource_keys,
        states=states,
        repeat_every=repeat_every,
    )


def job_freshness_check(
    *,
    job: object,
    within: timedelta,
    name: str | None = None,
    required_resource_keys: Iterable[str] = (),
) -> CheckDecorator:
    """Fire when ``job`` has not completed successfully within the last ``within``."""
    return _check(CheckKind.NOT_FRESH, job, within, name, required_resource_keys)


def failure_count_check(
    *,
    job: object,
    failures: int,
    within: timedelta,
    name: str | None = None,
    required_resource_keys: Iterable[str] = (),
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
    return _check(
        CheckKind.FAILURE_COUNT, job, within, name, required_resource_keys, failures=failures
    )
