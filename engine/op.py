"""``@op``: a unit of work inside a job, with its own retries and hooks."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

from bus.events import HookRef
from bus.states import OpState
from engine.hooks import declared_hook_refs, hook_targets, state_hook_refs
from engine.run_context import current_run


@dataclass(frozen=True, slots=True)
class OpDefinition:
    """An op: call it inside a job body to run it (and publish its transitions).

    Outside a running job, calling it just calls the function, so ops stay testable.
    """

    fn: Callable[..., Any]
    name: str
    description: str | None = None
    retries: int = 0
    retry_delay_seconds: float = 0.0
    required_resource_keys: frozenset[str] = frozenset()
    #: Hooks attached to this op, as wire references (validated when attached).
    hook_refs: tuple[HookRef, ...] = ()
    #: The attached hooks by reference, for the worker's code location to find.
    hook_targets: Mapping[str, object] = field(default_factory=dict)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        run = current_run()
        if run is None:
            return self.fn(*args, **kwargs)
        return run.execute_op(self, args, kwargs)

    def __repr__(self) -> str:
        return (
            f"<OpDefinition name={self.name!r} retries={self.retries} hooks={len(self.hook_refs)}>"
        )

    def with_hooks(self, hook_defs: Iterable[object]) -> OpDefinition:
        """A copy of this op with Dagster-style hooks added, for one invocation."""
        hook_defs = list(hook_defs)
        return dataclasses.replace(
            self,
            hook_refs=self.hook_refs + declared_hook_refs(hook_defs),
            hook_targets={**self.hook_targets, **hook_targets(hook_defs)},
        )

    def with_options(
        self,
        *,
        on_completion: Iterable[object] | None = None,
        on_failure: Iterable[object] | None = None,
        on_running: Iterable[object] | None = None,
        retries: int | None = None,
        retry_delay_seconds: float | None = None,
    ) -> OpDefinition:
        """A copy with Prefect-style hooks added and/or retry options changed."""
        added = (
            state_hook_refs(on_completion, on=OpState.COMPLETED)
            + state_hook_refs(on_failure, on=OpState.FAILED)
            + state_hook_refs(on_running, on=OpState.RUNNING)
        )
        targets = hook_targets([*(on_completion or ()), *(on_failure or ()), *(on_running or ())])
        return dataclasses.replace(
            self,
            hook_refs=self.hook_refs + added,
            hook_targets={**self.hook_targets, **targets},
            retries=self.retries if retries is None else retries,
            retry_delay_seconds=(
                self.retry_delay_seconds if retry_delay_seconds is None else retry_delay_seconds
            ),
        )


@overload
def op(fn: Callable[..., Any], /) -> OpDefinition: ...


@overload
def op(
    *,
    name: str | None = None,
    retries: int = 0,
    retry_delay_seconds: float = 0.0,
    required_resource_keys: Iterable[str] = (),
    on_completion: Iterable[object] | None = None,
    on_failure: Iterable[object] | None = None,
    on_running: Iterable[object] | None = None,
) -> Callable[[Callable[..., Any]], OpDefinition]: ...


def op(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    retry_delay_seconds: float = 0.0,
    required_resource_keys: Iterable[str] = (),
    on_completion: Iterable[object] | None = None,
    on_failure: Iterable[object] | None = None,
    on_running: Iterable[object] | None = None,
) -> OpDefinition | Callable[[Callable[..., Any]], OpDefinition]:
    """Declare an op, bare (``@op``) or with options (``@op(retries=2, on_failure=[...])``).

    Args:
        name: the op's name (default: the function's name).
        retries: extra attempts after the first failure (default 0).
        retry_delay_seconds: pause between attempts (default 0).
        required_resource_keys: resources the op uses from the job's ``resource_defs``.
        on_completion: Prefect-style hooks ``(op, op_run, state)`` run when it completes.
        on_failure: hooks run when its last attempt fails.
        on_running: hooks run when it starts.
    """

    def decorate(func: Callable[..., Any]) -> OpDefinition:
        base = OpDefinition(
            fn=func,
            name=name or func.__name__,
            description=func.__doc__,
            retries=retries,
            retry_delay_seconds=retry_delay_seconds,
            required_resource_keys=frozenset(required_resource_keys),
        )
        return base.with_options(
            on_completion=on_completion, on_failure=on_failure, on_running=on_running
        )

    return decorate(fn) if fn is not None else decorate
