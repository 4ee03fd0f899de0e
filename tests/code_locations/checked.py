"""A code location with time-based checks on the jobs of ``basic``; checks record calls."""

from __future__ import annotations

from datetime import timedelta

from bus import RunState
from sensors import (
    CheckContext,
    Definitions,
    failure_count_check,
    job_freshness_check,
    run_stuck_check,
)
from tests.code_locations.basic import etl, quiet

#: Every check call, as (check name, context).
FIRED: list[tuple[str, CheckContext]] = []
#: How many times ``flaky_check`` was called.
ATTEMPTS: list[int] = []


class Pager:
    """A resource a check function asks for (``required_resource_keys``)."""

    def __init__(self) -> None:
        self.pages: list[str] = []

    def page(self, text: str) -> None:
        self.pages.append(text)


PAGER = Pager()
definitions = Definitions(resources={"pager": PAGER})


@failure_count_check(job=etl, failures=2, within=timedelta(hours=1))
def etl_keeps_failing(context: CheckContext) -> None:
    FIRED.append(("etl_keeps_failing", context))


@job_freshness_check(job=quiet, within=timedelta(hours=1))
def quiet_is_stale(context: CheckContext) -> None:
    FIRED.append(("quiet_is_stale", context))


@run_stuck_check(job="hanging", longer_than=timedelta(minutes=30))
def hanging_too_long(context: CheckContext) -> None:
    FIRED.append(("hanging_too_long", context))


@run_stuck_check(job="queued", longer_than=timedelta(minutes=10), state=RunState.PENDING)
def never_started(context: CheckContext) -> None:
    FIRED.append(("never_started", context))


@job_freshness_check(job="never_runs", within=timedelta(hours=1), name="broken")
def broken_check(context: CheckContext) -> None:
    raise RuntimeError("pager is down")


@job_freshness_check(job="never_runs", within=timedelta(hours=1))
def flaky_check(context: CheckContext) -> None:
    ATTEMPTS.append(1)
    if len(ATTEMPTS) < 2:
        raise ConnectionError("try again")
    FIRED.append(("flaky_check", context))


@job_freshness_check(job="nightly", within=timedelta(hours=25), required_resource_keys={"pager"})
def page_when_stale(context: CheckContext) -> None:
    context.resources.pager.page(f"{context.check_name}: {context.message}")
    FIRED.append(("page_when_stale", context))
