"""A code location with a stuck-run check and a freshness check on ``nightly_etl`` (which
never runs here), and a rule to Slack; each check's function appends a line to
``$CHECK_CALLS_FILE`` per call, so a test can count calls across worker processes. The
freshness window is ``$CHECK_FRESH_WINDOW_S`` seconds (default 25 h)."""

from __future__ import annotations

import os
from datetime import timedelta

from notifiers import NotificationRule, SlackChannel
from sensors import CheckContext, Definitions, job_freshness_check, run_stuck_check


class CallLog:
    """A resource: appends one line per call to a file (shared by worker processes)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def note(self, line: str) -> None:
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(line + "\n")


# A test code location may read its own environment (library code never does).
definitions = Definitions(
    resources={"calls": CallLog(os.environ.get("CHECK_CALLS_FILE", "/dev/null"))}
)

oncall = NotificationRule(
    name="oncall", jobs=["nightly_etl"], destinations=[SlackChannel("#data-alerts")]
)


@run_stuck_check(
    job="nightly_etl", longer_than=timedelta(minutes=30), required_resource_keys={"calls"}
)
def nightly_is_stuck(context: CheckContext) -> None:
    context.resources.calls.note(f"{context.event_id} {context.message}")


@job_freshness_check(
    job="nightly_etl",
    within=timedelta(seconds=float(os.environ.get("CHECK_FRESH_WINDOW_S", 25 * 3600))),
    required_resource_keys={"calls"},
)
def nightly_is_stale(context: CheckContext) -> None:
    context.resources.calls.note(f"{context.event_id} {context.message}")
