"""Naming hooks by reference, so an event can say which hook to run without code.

A hook is referenced by ``"module:qualname"`` of its function. The worker never imports
that string: it looks it up among the hooks its own loaded code location registered.
Anything that cannot be found that way (a lambda, a closure, non-JSON ``partial``
arguments) is refused when it is attached, not when a worker meets it at 3 a.m.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import JsonValue

from bus.errors import ConfigError
from bus.events import HookRef


class HookAttachError(ConfigError):
    """A hook was attached that a worker could not run; raised at definition time."""


@runtime_checkable
class DeclaredHook(Protocol):
    """A hook object that declares its own name, calling style and trigger states.

    ``sensors.HookDefinition`` (made by ``@success_hook``/``@failure_hook``) is one.
    """

    @property
    def name(self) -> str: ...

    @property
    def fn(self) -> Callable[..., Any]: ...

    @property
    def style(self) -> Literal["context", "state"]: ...

    @property
    def on(self) -> tuple[str, ...]: ...


def callable_ref(fn: Callable[..., Any]) -> str:
    """``"module:qualname"`` of a module-level function.

    Raises:
        HookAttachError: for lambdas, nested functions and objects without a qualname.
    """
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname:
        raise HookAttachError(
            f"hook {fn!r} has no module-level name: got a {type(fn).__name__}. "
            "Define the hook as a module-level function in your code location."
        )
    if "<lambda>" in qualname or "<locals>" in qualname:
        raise HookAttachError(
            f"hook {qualname!r} in {module!r} is a lambda or a nested function, which a "
            f"worker cannot find: got {fn!r}. Define it at module level in your code "
            "location and bind arguments with functools.partial(hook, key=value)."
        )
    return f"{module}:{qualname}"


def split_partial(hook: object) -> tuple[Callable[..., Any], dict[str, JsonValue]]:
    """The function behind ``hook`` and its ``functools.partial`` keyword arguments.

    Raises:
        HookAttachError: for positional partial arguments or keyword values that are not
            JSON (they must travel in the event).
    """
    kwargs: dict[str, JsonValue] = {}
    while isinstance(hook, functools.partial):
        if hook.args:
            raise HookAttachError(
                f"hook partial of {getattr(hook.func, '__qualname__', hook.func)!r} binds "
                f"positional arguments: got {hook.args!r}. Bind them by keyword instead."
            )
        kwargs = {**hook.keywords, **kwargs}
        hook = hook.func
    if not callable(hook):
        raise HookAttachError(f"hook {hook!r} is not callable. Pass a function or a hook.")
    try:
        json.dumps(kwargs, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise HookAttachError(
            f"hook {getattr(hook, '__qualname__', hook)!r} has keyword arguments that are not "
            f"JSON: got {kwargs!r}. Pass only JSON values (str, int, float, bool, None, "
            "lists and dicts of those); they travel to the worker in the event."
        ) from exc
    return hook, kwargs


def hook_ref(hook: object, *, on: tuple[str, ...]) -> HookRef:
    """The wire reference for ``hook``, attached to trigger on the states ``on``.

    A ``DeclaredHook`` (Dagster-style) keeps its own trigger states; a plain function
    (Prefect-style) takes ``on`` from the list it was attached through.
    """
    fn, kwargs = split_partial(hook)
    if isinstance(fn, DeclaredHook):
        return HookRef(
            ref=callable_ref(fn.fn), name=fn.name, style=fn.style, on=fn.on, hook_kwargs=kwargs
        )
    return HookRef(
        ref=callable_ref(fn),
        name=getattr(fn, "__name__", str(fn)),
        style="state",
        on=on,
        hook_kwargs=kwargs,
    )


def job_name_of(job: object, *, where: str) -> str:
    """The name of ``job``: a job's name, or a job definition (anything with a ``str``
    ``name``, such as ``engine.JobDefinition``).

    Args:
        where: what asked, for the error (e.g. ``"run_stuck_check 'slow'"``).

    Raises:
        ConfigError: ``job`` is neither.
    """
    if isinstance(job, str):
        return job
    name = getattr(job, "name", None)
    if isinstance(name, str):
        return name
    raise ConfigError(
        f"{where} names a job it cannot read: got {job!r}. Pass the job's name (a str) or "
        "its definition (made by @job), e.g. job='nightly_etl'."
    )
