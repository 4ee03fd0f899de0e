"""A code location with two sync hooks that hang (an HTTP call without a timeout) and a
quick one, all on the same op failure. In-process tests read and release them here."""

from __future__ import annotations

import threading

from engine import job, op
from sensors import HookContext, failure_hook

#: Set by the test to let the hung hooks return.
RELEASE = threading.Event()
#: Steps the quick hook handled.
QUICK: list[str] = []


@failure_hook
def hang_a(context: HookContext) -> None:
    RELEASE.wait(20)


@failure_hook
def hang_b(context: HookContext) -> None:
    RELEASE.wait(20)


@failure_hook
def quick(context: HookContext) -> None:
    QUICK.append(context.step_key)


@op
def explode() -> None:
    raise ValueError("boom")


@job(hooks={hang_a, hang_b, quick})
def with_hung_hooks() -> None:
    explode()
