"""``@success_hook`` / ``@failure_hook``: Dagster-style op hooks, run by workers."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

from bus.refs import callable_ref
from bus.states import OpState

if TYPE_CHECKING:
    from sensors.context import HookContext


@dataclass(frozen=True, slots=True)
class HookDefinition:
    """A hook on op success or failure; call it with a ``HookContext`` to test it.

    Attributes:
        name: the hook's display name.
        fn: the decorated function, ``fn(context)``; sync or async.
        on: the op states that trigger it (``completed`` or ``failed``).
        required_resource_keys: resources the worker builds for it from the job.
    """

    name: str
    fn: Callable[..., Any]
    on: tuple[str, ...]
    required_resource_keys: frozenset[str] = frozenset()
    description: str | None = None
    style: Literal["context", "state"] = "context"

    def __post_init__(self) -> None:
        callable_ref(self.fn)  # refuse lambdas and closures when the hook is defined

    def __call__(self, context: HookContext) -> Any:
        return self.fn(context)

    def __repr__(self) -> str:
        return f"<HookDefinition name={self.name!r} on={list(self.on)}>"

    @property
    def ref(self) -> str:
        """The reference events carry for this hook."""
        return callable_ref(self.fn)


HookDecorator = Callable[[Callable[..., Any]], HookDefinition]


def _hook_decorator(
    fn: Callable[..., Any] | None,
    *,
    on: OpState,
    name: str | None,
    required_resource_keys: Iterable[str],
) -> HookDefinition | HookDecorator:
    def decorate(func: Callable[..., Any]) -> HookDefinition:
        return HookDefinition(
            name=name or func.__name__,
            fn=func,
            on=(on.value,),
            required_resource_keys=frozenset(required_resource_keys),
            description=func.__doc__,
        )

    return decorate(fn) if fn is not None else decorate


@overload
def success_hook(fn: Callable[..., Any], /) -> HookDefinition: ...


@overload
def success_hook(
    *, name: str | None = None, required_resource_keys: Iterable[str] = ()
) -> HookDecorator: ...


def success_hook(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    required_resource_keys: Iterable[str] = (),
) -> HookDefinition | HookDecorator:
    """A hook that runs, in a worker, when an op it is attached to completes.

    Args:
        name: the hook's name (default: the function's name).
        required_resource_keys: resources from the job's ``resource_defs`` it uses.
    """
    return _hook_decorator(
        fn, on=OpState.COMPLETED, name=name, required_resource_keys=required_resource_keys
    )


@overload
def failure_hook(fn: Callable[..., Any], /) -> HookDefinition: ...


@overload
def failure_hook(
    *, name: str | None = None, required_resource_keys: Iterable[str] = ()
) -> HookDecorator: ...


def failure_hook(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    required_resource_keys: Iterable[str] = (),
) -> HookDefinition | HookDecorator:
    """A hook that runs, in a worker, when an op it is attached to fails for good.

    Args:
        name: the hook's name (default: the function's name).
        required_resource_keys: resources from the job's ``resource_defs`` it uses.
    """
    return _hook_decorator(
        fn, on=OpState.FAILED, name=name, required_resource_keys=required_resource_keys
    )
