"""Turning the hooks a user attaches into wire references, checked at attach time."""

from __future__ import annotations

from collections.abc import Iterable

from bus.events import HookRef
from bus.refs import DeclaredHook, HookAttachError, callable_ref, hook_ref, split_partial
from bus.states import OpState, RunState


def state_hook_refs(
    hooks: Iterable[object] | None, *, on: OpState | RunState
) -> tuple[HookRef, ...]:
    """References for a Prefect-style list (``on_failure=[...]``) that fires on ``on``.

    Raises:
        HookAttachError: when an item is a ``@success_hook``/``@failure_hook`` hook, which
            takes a context rather than ``(job, run, state)``.
    """
    refs: list[HookRef] = []
    for hook in hooks or ():
        fn, _ = split_partial(hook)
        if isinstance(fn, DeclaredHook):
            raise HookAttachError(
                f"on_{on.value}=[...] takes plain functions called as (job_or_op, run, state): "
                f"got the hook {fn.name!r}. Attach @success_hook/@failure_hook hooks with "
                "hooks={...} or op.with_hooks({...}) instead."
            )
        refs.append(hook_ref(hook, on=(on.value,)))
    return tuple(refs)


def hook_targets(hooks: Iterable[object] | None) -> dict[str, object]:
    """``{ref: hook}`` for attached hooks, so a worker's code location can find each one."""
    targets: dict[str, object] = {}
    for hook in hooks or ():
        fn, _ = split_partial(hook)
        target = fn.fn if isinstance(fn, DeclaredHook) else fn
        targets[callable_ref(target)] = fn
    return targets


def declared_hook_refs(hooks: Iterable[object] | None) -> tuple[HookRef, ...]:
    """References for a Dagster-style set (``hooks={...}``) of declared hooks.

    Raises:
        HookAttachError: when an item is a plain function rather than a declared hook.
    """
    refs: list[HookRef] = []
    for hook in hooks or ():
        fn, _ = split_partial(hook)
        if not isinstance(fn, DeclaredHook):
            raise HookAttachError(
                f"hooks= takes hooks made with @success_hook or @failure_hook: got "
                f"{getattr(fn, '__qualname__', fn)!r}. Decorate it, or attach a plain "
                "function with on_completion=[...] / on_failure=[...] instead."
            )
        refs.append(hook_ref(hook, on=()))
    return tuple(sorted(refs, key=lambda ref: ref.ref))
