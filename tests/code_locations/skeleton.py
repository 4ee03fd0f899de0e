"""A code location for the end-to-end test: a failing op whose hook posts to Slack.

The hook's message carries the pid of the process that ran it, so the test can prove the
hook ran in the worker, not in the job's process.
"""

from __future__ import annotations

import os

from engine import job, op
from notifiers import SlackResource, escape_mrkdwn
from sensors import HookContext, failure_hook


@failure_hook(required_resource_keys={"slack"})
def slack_on_failure(context: HookContext) -> None:
    context.resources.slack.post(
        text=escape_mrkdwn(
            f"Op {context.op.name} failed in job {context.job_name}: {context.op_exception} "
            f"[pid {os.getpid()}]"
        )
    )


@op
def extract() -> int:
    return 41


@op
def explode(value: int) -> int:
    raise RuntimeError(f"warehouse refused row {value}")


@job(hooks={slack_on_failure}, resource_defs={"slack": SlackResource()})
def failing_job() -> None:
    explode(extract())
