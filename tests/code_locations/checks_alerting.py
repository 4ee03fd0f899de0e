"""A code location whose freshness check fires at once (its job never runs), with a rule
to Slack; the check's function appends a line to ``$CHECK_CALLS_FILE`` per call, so a
test can count calls across worker processes."""

from __future__ import annotations

import os
from datetime import timedelta

from notifiers import NotificationRule, SlackChannel
from sensors import CheckContext, Definitions, job_freshness_check


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


@job_freshness_check(
    job="nightly_etl", within=timedelta(hours=25), required_resource_keys={"calls"}
)
def nightly_is_stale(context: CheckContext) -> None:
    context.resources.calls.note(f"{context.event_id} {context.message}")
