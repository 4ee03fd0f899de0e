"""A code location with a hook that fails twice then succeeds, and one that always fails.

Counters live in this module: in-process (burst mode) tests read them.
"""

from __future__ import annotations

from collections import Counter

from engine import job, op
from sensors import HookContext, failure_hook

#: Attempts per hook, keyed by (hook name, step key).
ATTEMPTS: Counter[tuple[str, str]] = Counter()
#: Hooks that got through, keyed the same way.
SUCCEEDED: Counter[tuple[str, str]] = Counter()


@failure_hook
def flaky(context: HookContext) -> None:
    ATTEMPTS["flaky", context.step_key] += 1
    if ATTEMPTS["flaky", context.step_key] <= 2:
        raise ConnectionError("pager API unreachable")
    SUCCEEDED["flaky", context.step_key] += 1


@failure_hook
def steady(context: HookContext) -> None:
    ATTEMPTS["steady", context.step_key] += 1
    SUCCEEDED["steady", context.step_key] += 1


@failure_hook
def hopeless(context: HookContext) -> None:
    ATTEMPTS["hopeless", context.step_key] += 1
    raise PermissionError("token revoked")


@op
def explode() -> None:
    raise ValueError("boom")


@job(hooks={flaky, steady})
def with_flaky_hook() -> None:
    explode()


@job(hooks={hopeless, steady})
def with_hopeless_hook() -> None:
    explode()
