"""Which handlers an event triggers, and how each is called.

A handler is one hook, sensor, rule destination or check function for one event. Its
``name`` is stable across workers and redeliveries (``hook:<ref>`` / ``sensor:<name>`` /
``rule:<rule>:<destination>`` / ``check:<name>``), so the idempotency record and the
dead-letter entry can name it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from bus.events import BusEvent, CheckEvent, HookRef, OpEvent, RunEvent
from sensors.checks import check_context_from_event
from sensors.context import hook_context_from_event
from sensors.errors import HookNotFoundError
from sensors.hooks import HookDefinition
from sensors.registry import CodeLocation
from sensors.run_requests import RunLauncher
from sensors.run_status import SensorDefinition
from sensors.state_args import DefinitionStub, state_hook_args
from sensors.step_failures import StepFailures

ArgsBuilder = Callable[[Mapping[str, Any]], tuple[Any, ...]]


# Not frozen: one is made per (event, handler), thousands a second, and a frozen
# dataclass's __init__ costs twice as much (1.8 against 0.8 µs); nothing changes a handler
# after it is made. Compared by identity: no two are the same handler run.
@dataclass(slots=True, eq=False)
class Handler:
    """One user callable to run for one event.

    Attributes:
        name: ``hook:<ref>`` or ``sensor:<name>``.
        fn: the user's callable.
        build_args: turns the built resources into the positional arguments.
        kwargs: keyword arguments (a hook's ``functools.partial`` arguments).
        resource_keys: the resources to build first.
        job_name: whose ``resource_defs`` supply them (``None``: the code location's).
    """

    name: str
    fn: Callable[..., Any]
    build_args: ArgsBuilder
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    resource_keys: frozenset[str] = frozenset()
    job_name: str | None = None
    #: The run's resource config (run config ``resources:``, redacted; ``{"env": NAME}``
    #: references kept), by resource key; used through ``engine.resources.wire_config``.
    resource_config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Called with what the user function returned, after it succeeded (a sensor's
    #: ``RunRequest``s); ``None``: the result is dropped.
    after: Callable[[Any], Awaitable[None]] | None = None

    def __repr__(self) -> str:
        return f"<Handler {self.name}>"


@dataclass(frozen=True, slots=True)
class MissingHook:
    """A hook the event names that the code location does not define."""

    name: str
    error: HookNotFoundError


def hook_handlers(
    event: BusEvent, location: CodeLocation
) -> tuple[list[Handler], list[MissingHook]]:
    """The hooks ``event`` triggers, resolved in ``location``; and those it lacks.

    A check event's one "hook" is the check's own function (``check_handlers``).
    """
    if isinstance(event, CheckEvent):
        return check_handlers(event, location)
    handlers: list[Handler] = []
    missing: list[MissingHook] = []
    for ref in event.hooks_triggered():
        name = f"hook:{ref.ref}"
        try:
            target = location.hooks[ref.ref]  # not ``location.hook``: a call per hook run
        except KeyError:
            missing.append(MissingHook(name=name, error=location.hook_not_found(ref.ref)))
            continue
        handlers.append(_hook_handler(name, ref, target, event, location))
    return handlers, missing


def _hook_handler(
    name: str, ref: HookRef, target: object, event: RunEvent | OpEvent, location: CodeLocation
) -> Handler:
    if isinstance(target, HookDefinition) and isinstance(event, OpEvent):
        hook_def = target
        run = event.run  # read once: a pydantic model's attributes are slow to read
        return Handler(
            name,
            hook_def.fn,
            lambda resources: (
                hook_context_from_event(event, hook_def=hook_def, resources=resources),
            ),
            ref.hook_kwargs,
            hook_def.required_resource_keys,
            run.job_name,
            run.resource_config,
        )
    definition = _definition_for(event, location)
    return Handler(
        name=name,
        fn=cast(Callable[..., Any], target),
        build_args=lambda _resources: state_hook_args(event, definition),
        kwargs=ref.hook_kwargs,
        job_name=event.job_name,
    )


def check_handlers(
    event: CheckEvent, location: CodeLocation
) -> tuple[list[Handler], list[MissingHook]]:
    """The check function ``event`` names, as a handler; or why the code location lacks it.

    Its resources come from the job's ``resource_defs`` when the code location defines the
    job, else from ``Definitions(resources=...)`` (a check may watch a job defined
    elsewhere).
    """
    name = f"check:{event.check_name}"
    check = location.checks.get(event.check_name)
    if check is None:
        error = HookNotFoundError(
            f"check {event.check_name!r} is not defined in code location "
            f"{location.module_name!r}. Start the worker with the code location that defines "
            "the check, or deploy the new code."
        )
        return [], [MissingHook(name=name, error=error)]
    job_name = event.job_name if location.job(event.job_name) is not None else None
    handler = Handler(
        name=name,
        fn=check.fn,
        build_args=lambda resources: (check_context_from_event(event, resources=resources),),
        resource_keys=check.required_resource_keys,
        job_name=job_name,
    )
    return [handler], []


def _definition_for(event: RunEvent | OpEvent, location: CodeLocation) -> object:
    if isinstance(event, OpEvent):
        return location.ops.get(event.op.name) or DefinitionStub(event.op.name)
    return location.job(event.job_name) or DefinitionStub(event.job_name)


def sensor_handler(
    sensor: SensorDefinition,
    event: RunEvent,
    launcher: RunLauncher | None = None,
    step_failures: StepFailures | None = None,
) -> Handler:
    """The handler that runs ``sensor`` for ``event`` (starting the runs it requests)."""
    loader = step_failures.loader(event) if step_failures and sensor.failure else None
    after = None
    if sensor.request_job is not None and launcher is not None:
        job = sensor.request_job

        async def after(result: Any) -> None:
            await launcher.launch(job, result, sensor=sensor.name, event_id=event.event_id)

    return Handler(
        name=f"sensor:{sensor.name}",
        fn=sensor.fn,
        build_args=lambda resources: (
            sensor.build_context(event, resources=resources, step_failures=loader),
        ),
        resource_keys=sensor.required_resource_keys,
        after=after,
    )
