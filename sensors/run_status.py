"""Job-level sensors: ``@run_status_sensor`` and ``@run_failure_sensor``, as in Dagster."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, overload

from bus.events import ErrorInfo, OpEvent, RunEvent, RunInfo
from bus.refs import callable_ref
from bus.states import RunState

#: The run states a run failure sensor reacts to: a crash is a failure to the on-call.
FAILURE_STATES = frozenset({RunState.FAILED, RunState.CRASHED})


@dataclass(frozen=True, slots=True)
class RunStatusSensorContext:
    """What a run status sensor receives.

    Attributes:
        sensor_name: the sensor's name.
        run: the run (id, name, job, tags, parameters, start time, attempt).
        event: the run event that triggered the sensor.
        resources: the sensor's resources.
        log: a logger for the sensor.
    """

    sensor_name: str
    run: RunInfo
    event: RunEvent
    resources: Any = field(default_factory=SimpleNamespace)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("hookbus.sensors"))
    #: Reads the run's failed op events from the stream, when asked (``None``: none).
    step_failures: Callable[[], tuple[OpEvent, ...]] | None = field(default=None, repr=False)

    @property
    def run_status(self) -> RunState:
        return self.event.to_state

    def for_run_failure(self) -> RunFailureSensorContext:
        """This context as a ``RunFailureSensorContext`` (as Dagster's, for tests)."""
        return RunFailureSensorContext(
            sensor_name=self.sensor_name,
            run=self.run,
            event=self.event,
            resources=self.resources,
            log=self.log,
            step_failures=self.step_failures,
        )

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} sensor={self.sensor_name!r} run_id={self.run.run_id!r} "
            f"status={self.run_status}>"
        )


@dataclass(frozen=True, slots=True, repr=False)
class RunFailureSensorContext(RunStatusSensorContext):
    """What a run failure sensor receives: the status context plus the failure."""

    @property
    def failure_event(self) -> RunEvent:
        """The failed (or crashed) run event; ``failure_event.error`` has the error."""
        return self.event

    @property
    def error(self) -> ErrorInfo | None:
        return self.event.error

    def get_step_failure_events(self) -> tuple[OpEvent, ...]:
        """The run's op failure (and crash) events, oldest first: each names the op
        (``.op``) and carries its error (``.error``). Read from the stream when called."""
        return () if self.step_failures is None else self.step_failures()


@dataclass(frozen=True, slots=True)
class SensorDefinition:
    """A sensor that runs, in a worker, when a monitored job's run reaches a state.

    Attributes:
        name: unique within the code location; also names its consumer group.
        fn: ``fn(context)``, sync or async.
        run_states: the states it reacts to.
        monitored_jobs: job names it watches (empty: every job).
        failure: whether it receives a ``RunFailureSensorContext``.
        resource_defs: resources the sensor brings itself (a ready-made sensor's Slack
            client, see ``make_slack_on_run_failure_sensor``), added to the code location's
            resources under their own keys and built in the worker.
    """

    name: str
    fn: Callable[..., Any]
    run_states: frozenset[RunState]
    monitored_jobs: frozenset[str] = frozenset()
    required_resource_keys: frozenset[str] = frozenset()
    failure: bool = False
    #: The job a ``RunRequest`` returned by the sensor starts (``None``: it starts none).
    request_job: str | None = None
    resource_defs: Mapping[str, object] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        callable_ref(self.fn)

    def __call__(self, context: RunStatusSensorContext) -> Any:
        return self.fn(context)

    def __repr__(self) -> str:
        watched = sorted(self.monitored_jobs) or "all"
        return (
            f"<SensorDefinition name={self.name!r} states={sorted(map(str, self.run_states))} "
            f"jobs={watched}>"
        )

    def matches(self, event: RunEvent) -> bool:
        """Whether this sensor should run for ``event``."""
        return event.to_state in self.run_states and (
            not self.monitored_jobs or event.job_name in self.monitored_jobs
        )

    def build_context(
        self,
        event: RunEvent,
        *,
        resources: Mapping[str, Any],
        step_failures: Callable[[], tuple[OpEvent, ...]] | None = None,
    ) -> RunStatusSensorContext:
        """The context for ``event``."""
        kind = RunFailureSensorContext if self.failure else RunStatusSensorContext
        return kind(
            sensor_name=self.name,
            run=event.run,
            event=event,
            resources=SimpleNamespace(**resources),
            log=logging.getLogger(f"hookbus.sensors.{self.name}"),
            step_failures=step_failures,
        )


SensorDecorator = Callable[[Callable[..., Any]], SensorDefinition]


def _job_names(jobs: Iterable[object] | None) -> frozenset[str]:
    return frozenset(job if isinstance(job, str) else getattr(job, "name") for job in jobs or ())  # noqa: B009


def _job_name(job: object | None) -> str | None:
    return None if job is None else next(iter(_job_names([job])))


@overload
def run_failure_sensor(fn: Callable[..., Any], /) -> SensorDefinition: ...


@overload
def run_failure_sensor(
    *,
    name: str | None = None,
    monitored_jobs: Iterable[object] | None = None,
    required_resource_keys: Iterable[str] = (),
    request_job: object | None = None,
) -> SensorDecorator: ...


def run_failure_sensor(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    monitored_jobs: Iterable[object] | None = None,
    required_resource_keys: Iterable[str] = (),
    request_job: object | None = None,
) -> SensorDefinition | SensorDecorator:
    """A sensor on runs that fail or crash, receiving a ``RunFailureSensorContext``.

    Args:
        name: the sensor's name (default: the function's name).
        monitored_jobs: jobs (definitions or names) to watch; default all.
        required_resource_keys: resources from the worker's ``resources`` it uses.
        request_job: a job (or its name) the sensor may start by returning a
            ``RunRequest``.
    """

    def decorate(func: Callable[..., Any]) -> SensorDefinition:
        return SensorDefinition(
            name=name or func.__name__,
            fn=func,
            run_states=FAILURE_STATES,
            monitored_jobs=_job_names(monitored_jobs),
            required_resource_keys=frozenset(required_resource_keys),
            failure=True,
            request_job=_job_name(request_job),
        )

    return decorate(fn) if fn is not None else decorate


def run_status_sensor(
    *,
    run_status: RunState | Iterable[RunState],
    name: str | None = None,
    monitored_jobs: Iterable[object] | None = None,
    required_resource_keys: Iterable[str] = (),
    request_job: object | None = None,
) -> SensorDecorator:
    """A sensor on runs that reach ``run_status``, receiving a ``RunStatusSensorContext``.

    Args:
        run_status: one state or several.
        name: the sensor's name (default: the function's name).
        monitored_jobs: jobs (definitions or names) to watch; default all.
        required_resource_keys: resources from the worker's ``resources`` it uses.
        request_job: a job (or its name) the sensor may start by returning a
            ``RunRequest``.
    """
    states = frozenset({run_status} if isinstance(run_status, RunState) else run_status)

    def decorate(func: Callable[..., Any]) -> SensorDefinition:
        return SensorDefinition(
            name=name or func.__name__,
            fn=func,
            run_states=states,
            monitored_jobs=_job_names(monitored_jobs),
            required_resource_keys=frozenset(required_resource_keys),
            request_job=_job_name(request_job),
        )

    return decorate


def build_run_status_sensor_context(
    *,
    sensor_name: str = "test_sensor",
    run_status: RunState = RunState.FAILED,
    job_name: str = "test_job",
    run_id: str = "test-run",
    error: BaseException | None = None,
    tags: Mapping[str, str] | None = None,
    resources: Mapping[str, Any] | None = None,
) -> RunStatusSensorContext:
    """A ``RunStatusSensorContext`` for unit-testing a sensor without a worker or Redis.

    Call ``.for_run_failure()`` on it for a run failure sensor.

    Example:
        ``report(build_run_status_sensor_context(error=ValueError("x")).for_run_failure())``
    """
    run = RunInfo(
        run_id=run_id, run_name=f"{job_name}-{run_id}", job_name=job_name, tags=dict(tags or {})
    )
    event = RunEvent(
        seq=1,
        run=run,
        from_state=RunState.RUNNING,
        to_state=run_status,
        error=None if error is None else ErrorInfo.from_exception(error),
    )
    return RunStatusSensorContext(
        sensor_name=sensor_name,
        run=run,
        event=event,
        resources=SimpleNamespace(**(resources or {})),
        log=logging.getLogger(f"hookbus.sensors.{sensor_name}"),
    )
