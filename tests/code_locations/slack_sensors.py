"""A code location with ready-made Slack run failure sensors (one default, one custom text)."""

from __future__ import annotations

from engine import job, op
from notifiers import escape_mrkdwn
from sensors import RunFailureSensorContext, make_slack_on_run_failure_sensor


@op
def explode() -> None:
    raise RuntimeError("<!channel> the warehouse is gone")


@job(tags={"team": "data"})
def doomed() -> None:
    explode()


@job
def unwatched() -> None:
    explode()


def short_text(context: RunFailureSensorContext) -> str:
    return escape_mrkdwn(f"{context.run.job_name} is down ({context.run.run_id})")


slack_on_failure = make_slack_on_run_failure_sensor(
    "#data-alerts", monitored_jobs=[doomed], webserver_base_url="https://hookbus.example.com"
)
terse = make_slack_on_run_failure_sensor(
    "#terse", name="terse", text_fn=short_text, monitored_jobs=["doomed"]
)
