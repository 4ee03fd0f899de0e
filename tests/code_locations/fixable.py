"""A code location whose hook fails until the test "deploys the fix" (flips ``BROKEN``)."""

from __future__ import annotations

from engine import job, op
from sensors import HookContext, failure_hook

#: While True the hook raises, as a hook with a bug would.
BROKEN = True
#: Steps the hook handled successfully.
HANDLED: list[str] = []


@failure_hook
def page_on_call(context: HookContext) -> None:
    if BROKEN:
        raise KeyError("pager_service_url")
    HANDLED.append(context.step_key)


@op
def flaky_load() -> None:
    raise ConnectionError("warehouse unreachable")


@job(hooks={page_on_call})
def nightly() -> None:
    flaky_load()
