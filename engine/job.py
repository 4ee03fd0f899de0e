"""``@job``: a function whose body calls ops, plus the hooks and resources of its runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

from bus.connection import connect
from bus.events import HookRef
from bus.publisher import Publisher
from bus.states import RunState
from engine.errors import RunFailedError
from engine.hooks import declared_hook_refs, hook_targets, state_hook_refs
from engine.result import RunResult
from engine.run import Run
from engine.settings import EngineSettings


@dataclass(frozen=True, slots=True)
class JobDefinition:
    """A job: its body, the hooks on its ops and on its runs, and its resources.

    Attributes:
        op_hook_refs: Dagster-style hooks (``hooks={...}``) applied to every op.
        run_hook_refs: Prefect-style job state hooks (``on_failure=[...]`` …).
        resource_defs: resources by key; built in the worker for the hooks that need them.
    """

    fn: Callable[..., Any]
    name: str
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    op_hook_refs: tuple[HookRef, ...] = ()
    run_hook_refs: tuple[HookRef, ...] = ()
    resource_defs: Mapping[str, object] = field(default_factory=dict)
    #: Every attached hook by reference, for the worker's code location to find.
    hook_targets: Mapping[str, object] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"<JobDefinition name={self.name!r} op_hooks={len(self.op_hook_refs)} "
            f"run_hooks={len(self.run_hook_refs)} resources={sorted(self.resource_defs)}>"
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the job (Prefect style) and return its body's value; raise if it fails."""
        return self.execute_in_process(*args, **kwargs).output

    def execute_in_process(
        self,
        *args: Any,
        raise_on_error: bool = True,
        settings: EngineSettings | None = None,
        tags: dict[str, str] | None = None,
        run_id: str | None = None,
        **kwargs: Any,
    ) -> RunResult:
        """Run the job in this process, publishing every transition.

        Args:
            raise_on_error: raise ``RunFailedError`` if the run does not complete
                (default ``True``); otherwise return the failed result.
            settings: where to publish (default: ``EngineSettings()`` from the environment).
            tags: extra run tags.
            run_id: a run id to use (default: a new one).
        """
        settings = settings or EngineSettings()
        client = connect(settings)
        try:
            publisher = Publisher(client, keys=settings.keys)
            run = Run(self, publisher=publisher, run_id=run_id, tags=tags)
            result = run.execute(*args, **kwargs)
        finally:
            client.close()
        if raise_on_error and result.state is not RunState.COMPLETED:
            raise RunFailedError(result)
        return result


@overload
def job(fn: Callable[..., Any], /) -> JobDefinition: ...


@overload
def job(
    *,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    hooks: Iterable[object] | None = None,
    resource_defs: Mapping[str, object] | None = None,
    on_completion: Iterable[object] | None = None,
    on_failure: Iterable[object] | None = None,
    on_cancellation: Iterable[object] | None = None,
    on_crashed: Iterable[object] | None = None,
    on_running: Iterable[object] | None = None,
) -> Callable[[Callable[..., Any]], JobDefinition]: ...


def job(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    hooks: Iterable[object] | None = None,
    resource_defs: Mapping[str, object] | None = None,
    on_completion: Iterable[object] | None = None,
    on_failure: Iterable[object] | None = None,
    on_cancellation: Iterable[object] | None = None,
    on_crashed: Iterable[object] | None = None,
    on_running: Iterable[object] | None = None,
) -> JobDefinition | Callable[[Callable[..., Any]], JobDefinition]:
    """Declare a job, bare (``@job``) or with options.

    Args:
        name: the job's name (default: the function's name).
        tags: tags on every run.
        hooks: Dagster-style ``@success_hook``/``@failure_hook`` hooks for every op.
        resource_defs: resources by key, for ops and hooks.
        on_completion: Prefect-style hooks ``(job, run, state)`` on the run completing.
        on_failure: … on the run failing.
        on_cancellation: … on the run being cancelled.
        on_crashed: … on the run crashing (its process died).
        on_running: … on the run starting.
    """

    op_hooks = list(hooks or ())
    state_hooks = [
        *(on_running or ()),
        *(on_completion or ()),
        *(on_failure or ()),
        *(on_cancellation or ()),
        *(on_crashed or ()),
    ]

    def decorate(func: Callable[..., Any]) -> JobDefinition:
        return JobDefinition(
            fn=func,
            name=name or func.__name__,
            description=func.__doc__,
            tags=dict(tags or {}),
            op_hook_refs=declared_hook_refs(op_hooks),
            run_hook_refs=(
                state_hook_refs(on_running, on=RunState.RUNNING)
                + state_hook_refs(on_completion, on=RunState.COMPLETED)
                + state_hook_refs(on_failure, on=RunState.FAILED)
                + state_hook_refs(on_cancellation, on=RunState.CANCELLING)
                + state_hook_refs(on_crashed, on=RunState.CRASHED)
            ),
            resource_defs=dict(resource_defs or {}),
            hook_targets=hook_targets([*op_hooks, *state_hooks]),
        )

    return decorate(fn) if fn is not None else decorate
