"""Pure message formatting: Slack mrkdwn escaping and the plain text of an alert."""

from __future__ import annotations

from bus.events import OpEvent, RunEvent


def escape_mrkdwn(text: str) -> str:
    """Make user text inert in Slack: ``&``, ``<`` and ``>`` become entities.

    That alone defuses ``<!channel>``, ``<@U123>`` and ``<http://x|y>`` links.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def failure_text(event: RunEvent | OpEvent) -> str:
    """A one-glance plain-text alert for a failed (or crashed) op or run, escaped."""
    what = (
        f"Op {event.op.step_key!r} in job {event.job_name!r}"
        if isinstance(event, OpEvent)
        else f"Job {event.job_name!r}"
    )
    lines = [f"{what} {event.to_state} (run {event.run_id})"]
    if event.error is not None:
        lines.append(f"{event.error.type}: {event.error.message}")
    return escape_mrkdwn("\n".join(lines))
