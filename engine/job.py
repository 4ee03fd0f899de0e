"""``@job`` and ``@graph``: a function whose body calls ops, plus its hooks and resources.

A ``@graph`` is the same body without hooks or resources; ``graph.to_job(name=...,
resource_defs=..., hooks=...)`` makes environment-specific jobs of it (a dev job with a
mocked Slack, a prod job with the real one), as in Dagster.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

from bus.events import HookRef
from bus.refs import split_partial
from bus.states import RunState
from engine.errors import DefinitionError
from engine.hooks import declared_hook_refs, hook_targets, state_hook_refs
from engine.op import OpDefinition
from engine.result import RunResult

if TYPE_CHECKING:
    from engine.settings import EngineSettings

#: Threads for ``op.submit(...)`` in a run, unless ``@job(max_concurrency=N)`` says.
DEFAULT_MAX_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class JobDefinition:
    """A job: its body, the hooks on its ops and on its runs, and its resources.

    Attributes:
        op_hook_refs: Dagster-style hooks (``hooks={...}``) applied to every op.
        run_hook_refs: Prefect-style job state hooks (``on_failure=[...]`` …).
        resource_defs: resources by key; built in the engine for the ops that need them
            and in the worker for the hooks that need them.
        op_defs: the ops the body calls, by name (found in the body's code), for run
            config checks and resource checks at definition time.
        retries: extra attempts of the whole body after a failure.
        max_concurrency: threads for ``op.submit``.
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
    op_defs: Mapping[str, OpDefinition] = field(default_factory=dict)
    retries: int = 0
    retry_delay_seconds: float = 0.0
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY

    def __repr__(self) -> str:
        return (
            f"<JobDefinition name={self.name!r} op_hooks={len(self.op_hook_refs)} "
            f"run_hooks={len(self.run_hook_refs)} resources={sorted(self.resource_defs)}>"
        )

    def __call__(self, *args: Any, return_state: bool = False, **kwargs: Any) -> Any:
        """Run the job (Prefect style) and return its body's value; raise if it fails.

        Args:
            return_state: return the run's final ``State`` instead of raising.
        """
        result = self.execute_in_process(*args, raise_on_error=not return_state, **kwargs)
        return result.as_state() if return_state else result.output

    def execute_in_process(
        self,
        *args: Any,
        run_config: Mapping[str, Any] | str | None = None,
        raise_on_error: bool = True,
        settings: EngineSettings | None = None,
        tags: Mapping[str, str] | None = None,
        run_id: str | None = None,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> RunResult:
        """Run the job in this process, publishing every transition.

        Args:
            *args: arguments of the job body (its parameters, Prefect style).
            run_config: ``{"ops": ..., "resources": ...}`` or a YAML file path; checked
                before the run starts.
            raise_on_error: raise ``RunFailedError`` if the run does not complete
                (default ``True``); otherwise return the result.
            settings: where to publish (default: ``EngineSettings()`` from the environment).
            tags: extra run tags.
            run_id: a run id to use (default: a new one).
            env: the environment resources resolve ``EnvVar``s from (default: this process's).
            **kwargs: keyword arguments of the job body.

        Raises:
            RunConfigError: the run config does not fit the job (nothing was published).
            RunFailedError: ``raise_on_error`` and the run did not complete.
        """
        # Deferred: running needs redis-py and the settings loader; importing a module
        # that only defines jobs must not pay for them (``import engine`` ≤ 0.3 s).
        from engine.execute import execute_job

        return execute_job(
            self,
            args,
            kwargs,
            run_config=run_config,
            raise_on_error=raise_on_error,
            settings=settings,
            tags=tags,
            run_id=run_id,
            env=env,
        )


@dataclass(frozen=True, slots=True)
class GraphDefinition:
    """A body of ops with no hooks or resources yet; ``to_job`` makes jobs of it."""

    fn: Callable[..., Any]
    name: str
    description: str | None = None

    def __repr__(self) -> str:
        return f"<GraphDefinition name={self.name!r}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Inside a running job a graph's body just runs (its ops join that run).
        return self.fn(*args, **kwargs)

    def to_job(self, name: str | None = None, **options: Any) -> JobDefinition:
        """A job of this graph, with the options ``@job`` takes (``resource_defs``,
        ``hooks``, ``on_failure`` …), e.g. a dev and a prod job of one graph."""
        job_def: JobDefinition = job(name=name or self.name, **options)(self.fn)
        return dataclasses.replace(job_def, description=self.description)


def graph(fn: Callable[..., Any] | None = None, /, *, name: str | None = None) -> Any:
    """Declare a graph (bare ``@graph`` or ``@graph(name=...)``)."""

    def decorate(func: Callable[..., Any]) -> GraphDefinition:
        return GraphDefinition(fn=func, name=name or func.__name__, description=func.__doc__)

    return decorate(fn) if fn is not None else decorate


@overload
def job(fn: Callable[..., Any], /) -> JobDefinition: ...


@overload
def job(
    *,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    hooks: Iterable[object] | None = None,
    resource_defs: Mapping[str, object] | None = None,
    retries: int = 0,
    retry_delay_seconds: float = 0.0,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
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
    retries: int = 0,
    retry_delay_seconds: float = 0.0,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
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
        retries: extra attempts of the whole body after a failure (default 0).
        retry_delay_seconds: pause between body attempts.
        max_concurrency: threads for ``op.submit`` (default 8).
        on_completion: Prefect-style hooks ``(job, run, state)`` on the run completing.
        on_failure: … on the run failing (after its retries).
        on_cancellation: … on the run being asked to stop (``cancelling``).
        on_crashed: … on the run crashing (its process died or was killed).
        on_running: … on the run starting (each attempt).

    Raises:
        DefinitionError: a resource key an op or hook needs is not in ``resource_defs``.
        HookAttachError: a hook a worker could not run.
    """
    op_hooks = list(hooks or ())
    state_lists = {
        RunState.RUNNING: on_running,
        RunState.COMPLETED: on_completion,
        RunState.FAILED: on_failure,
        RunState.CANCELLING: on_cancellation,
        RunState.CRASHED: on_crashed,
    }

    def decorate(func: Callable[..., Any]) -> JobDefinition:
        resources = dict(resource_defs or {})
        job_name = name or func.__name__
        ops = discover_ops(func)
        _check_resources(job_name, resources, [*ops.values(), *map(_unwrap, op_hooks)])
        run_refs: tuple[HookRef, ...] = ()
        for state, listed in state_lists.items():
            run_refs += state_hook_refs(listed, on=state)
        state_hooks = [hook for listed in state_lists.values() for hook in listed or ()]
        return JobDefinition(
            fn=func,
            name=job_name,
            description=func.__doc__,
            tags=dict(tags or {}),
            op_hook_refs=declared_hook_refs(op_hooks),
            run_hook_refs=run_refs,
            resource_defs=resources,
            hook_targets=hook_targets([*op_hooks, *state_hooks]),
            op_defs=ops,
            retries=retries,
            retry_delay_seconds=retry_delay_seconds,
            max_concurrency=max_concurrency,
        )

    return decorate(fn) if fn is not None else decorate


def discover_ops(func: Callable[..., Any]) -> dict[str, OpDefinition]:
    """The ops a job body refers to by name (also through graphs it calls)."""
    found: dict[str, OpDefinition] = {}
    namespace = getattr(func, "__globals__", {})
    for name in _names(getattr(func, "__code__", None)):
        value = namespace.get(name)
        if isinstance(value, OpDefinition):
            found[value.name] = value
        elif isinstance(value, GraphDefinition) and value.fn is not func:
            found.update(discover_ops(value.fn))
    return found


def _names(code: types.CodeType | None) -> Iterator[str]:
    if code is None:
        return
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


def _unwrap(hook: object) -> object:
    return split_partial(hook)[0]


def _check_resources(job_name: str, resources: Mapping[str, object], users: list[object]) -> None:
    for user in users:
        needed = frozenset(getattr(user, "required_resource_keys", frozenset()))
        missing = sorted(needed - set(resources))
        if missing:
            raise DefinitionError(
                f"{type(user).__name__.removesuffix('Definition').lower()} "
                f"{getattr(user, 'name', user)!r} in job {job_name!r} requires resources "
                f"{missing} that the job does not define: got resource_defs keys "
                f"{sorted(resources)}. Add them to resource_defs={{...}}."
            )
