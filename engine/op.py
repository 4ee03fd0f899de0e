"""``@op``: a unit of work inside a job, with its own retries and hooks."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, overload

from pydantic import BaseModel

from bus.events import HookRef
from bus.states import OpState
from engine.errors import DefinitionError
from engine.hooks import declared_hook_refs, hook_targets, state_hook_refs
from engine.op_run import OpFuture, execute_op, submit_op
from engine.run_context import current_run
from engine.state import State


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
    #: The pydantic model of the op's config (``context.op_config`` / a ``config`` arg).
    config_schema: type[BaseModel] | None = None
    #: The name of the argument that receives the config, if the function takes one.
    config_arg: str | None = None
    #: Whether the function's first argument is ``context`` (an ``OpExecutionContext``).
    takes_context: bool = False
    #: Whether a cancel may interrupt the op while it runs (``engine.interrupt``).
    interruptible: bool = False

    def __call__(self, *args: Any, return_state: bool = False, **kwargs: Any) -> Any:
        """Run the op: inside a running job, as an invocation of that run.

        Args:
            return_state: return the op's final ``State`` instead of raising on failure.
        """
        run = current_run()
        if run is None:
            return self._call_outside(args, kwargs, return_state=return_state)
        return execute_op(run, self, args, kwargs, return_state=return_state)

    def submit(self, *args: Any, **kwargs: Any) -> OpFuture:
        """Run the op concurrently inside the running job; returns a future.

        Pass the future to other ops as an input (they wait for it) or call
        ``.result()``. Outside a job, the op runs at once.
        """
        run = current_run()
        if run is None:
            future: Future[State] = Future()
            future.set_result(self._call_outside(args, kwargs, return_state=True))
            return OpFuture(future, self.name)
        return submit_op(run, self, args, kwargs)

    def _call_outside(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], *, return_state: bool
    ) -> Any:
        # Outside a job an op is its function, so ops stay unit-testable.
        if not return_state:
            return self.fn(*args, **kwargs)
        try:
            return State(OpState.COMPLETED, data=self.fn(*args, **kwargs), step_key=self.name)
        except Exception as exc:
            return State(OpState.FAILED, message=str(exc), exception=exc, step_key=self.name)

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
    config_schema: type[BaseModel] | None = None,
    interruptible: bool = False,
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
    config_schema: type[BaseModel] | None = None,
    interruptible: bool = False,
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
        config_schema: a pydantic model for its config (default: the annotation of a
            ``config`` argument, if the function has one).
        interruptible: a cancel stops it at once (``RunCancelled`` raised inside it, when
            it runs in the job's main thread), not at the next op boundary. Only for ops
            that are safe to stop at any line.
        on_completion: Prefect-style hooks ``(op, op_run, state)`` run when it completes.
        on_failure: hooks run when its last attempt fails.
        on_running: hooks run when it starts.
    """

    def decorate(func: Callable[..., Any]) -> OpDefinition:
        config_arg, annotated = _config_parameter(func)
        base = OpDefinition(
            fn=func,
            name=name or func.__name__,
            description=func.__doc__,
            retries=_check_retries(func, retries),
            retry_delay_seconds=retry_delay_seconds,
            required_resource_keys=frozenset(required_resource_keys),
            config_schema=config_schema or annotated,
            config_arg=config_arg,
            takes_context=_takes_context(func),
            interruptible=interruptible,
        )
        return base.with_options(
            on_completion=on_completion, on_failure=on_failure, on_running=on_running
        )

    return decorate(fn) if fn is not None else decorate


def _takes_context(func: Callable[..., Any]) -> bool:
    params = list(inspect.signature(func).parameters)
    return bool(params) and params[0] == "context"


def _config_parameter(func: Callable[..., Any]) -> tuple[str | None, type[BaseModel] | None]:
    if "config" not in inspect.signature(func).parameters:
        return None, None
    try:
        annotation = typing.get_type_hints(func).get("config")
    except (NameError, TypeError):
        annotation = None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "config", annotation
    return "config", None


def _check_retries(func: Callable[..., Any], retries: int) -> int:
    if retries < 0:
        raise DefinitionError(
            f"op {func.__name__!r} has a negative retries: got {retries!r}. Pass 0 or more."
        )
    return retries
