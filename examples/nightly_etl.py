"""An example code location: a nightly ETL whose ``transform`` op fails.

Both the engine (``hookbus run examples.nightly_etl nightly_etl``) and the worker
(``hookbus worker examples.nightly_etl``) import this module. The hooks below run in the
worker, not in the job's process. With ``SLACK_BOT_TOKEN`` and ``SLACK_CHANNEL`` set in the
worker's environment the alerts go to Slack; otherwise they are printed.
"""

from __future__ import annotations

import time
from typing import Any

from bus import ErrorInfo
from engine import job, op
from notifiers import SlackResource, escape_mrkdwn
from sensors import (
    Definitions,
    HookContext,
    RunFailureSensorContext,
    failure_hook,
    run_failure_sensor,
)


@failure_hook(required_resource_keys={"slack"})
def slack_on_failure(context: HookContext) -> None:
    """Tell the team which op failed, with the error, at a glance."""
    context.resources.slack.post(
        text=escape_mrkdwn(
            f"Op {context.op.name} failed in job {context.job_name} (run {context.run_id})\n"
            f"{context.op_exception}"
        )
    )


@op
def extract() -> list[dict[str, float | None]]:
    return [{"amount": 12.5}, {"amount": None}, {"amount": 3.0}]


@op
def transform(rows: list[dict[str, float | None]]) -> float:
    nulls = sum(1 for row in rows if row["amount"] is None)
    if nulls:
        raise ValueError(f"column 'amount' has {nulls} null value(s); refusing to load")
    return sum(row["amount"] or 0.0 for row in rows)


@op
def load(total: float) -> None:
    print(f"loaded total={total}")


@job(hooks={slack_on_failure}, resource_defs={"slack": SlackResource()}, tags={"team": "data"})
def nightly_etl() -> None:
    load(transform(extract()))


def release_warehouse_lock(job_def: Any, run: Any, state: Any) -> None:
    """Prefect-style ``on_crashed`` hook: clean up what a killed run left behind."""
    print(f"releasing the warehouse lock held by {run.name} ({state.name}: {state.message})")


@op
def load_warehouse(rows: list[dict[str, float | None]]) -> None:
    """A long load (the demo kills its process in the middle of it)."""
    for _ in range(600):
        time.sleep(0.1)


@job(on_crashed=[release_warehouse_lock], tags={"team": "data"})
def hourly_load() -> None:
    load_warehouse(extract())


def _what_happened(error: ErrorInfo | None) -> str:
    if error is None:
        return ""
    if error.type == "Crashed":
        # It says how the process ended ("process 41 on web-1 … was killed by SIGKILL");
        # after "crashed", the type would only repeat the word.
        return f": {error.message}"
    return f": {error.type}: {error.message}"


@run_failure_sensor(monitored_jobs=[nightly_etl, hourly_load], required_resource_keys={"slack"})
def report_failed_run(context: RunFailureSensorContext) -> None:
    """One message per failed run, whatever op failed."""
    detail = _what_happened(context.failure_event.error)
    context.resources.slack.post(
        text=escape_mrkdwn(
            f"Job {context.run.job_name} run {context.run.run_id} {context.run_status}{detail}"
        )
    )


defs = Definitions(
    jobs=[nightly_etl, hourly_load],
    sensors=[report_failed_run],
    resources={"slack": SlackResource()},
)
