"""How a time-based check's alert reads: what did not happen, where, by how much, the limit.

Pure, like ``notifiers.format`` (whose escaping and size limits it reuses): the on-call
sees at a glance which check fired, the job (and the stuck run), how long or how many,
and the limit that was crossed, e.g.::

    ⏳ Run still running after 2 h 5 min · job `nightly_etl`
    Run `nightly-42` (`3f2c…`) has been *running* for *2 h 5 min*; the limit is *30 min*.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final

from bus.events import CheckEvent, CheckKind
from notifiers.format import (
    MAX_BLOCKS,
    MAX_FIELD_CHARS,
    MAX_TEXT_CHARS,
    SlackMessage,
    clip,
    code,
    code_block,
    escape_mrkdwn,
    run_url,
    section,
    view_run_button,
)

#: An emoji per kind of check, so the kind reads before the words.
CHECK_EMOJI: Final = {
    CheckKind.RUN_STUCK: ":hourglass_flowing_sand:",
    CheckKind.NOT_FRESH: ":zzz:",
    CheckKind.FAILURE_COUNT: ":rotating_light:",
}


def window(seconds: float) -> str:
    """A limit or window as people say it: ``30 min``, ``25 h``, ``1 h 30 min``, ``45 s``."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    parts.append(f"{secs} s" if secs or total == 0 else "")
    return " ".join(part for part in parts if part)


def check_summary(event: CheckEvent) -> str:
    """One plain sentence: what was seen and the limit (user text not escaped)."""
    limit = window(event.within_s)
    if event.kind is CheckKind.RUN_STUCK:
        return (
            f"Run {_run_name(event)} ({event.run_id}) has been {event.run_state} for "
            f"{_stuck_for(event)}; the limit is {limit}."
        )
    if event.kind is CheckKind.NOT_FRESH:
        return (
            f"No successful run of job {event.job_name!r} in the last {limit}; {_last_seen(event)}."
        )
    runs = ", ".join(_failed_runs(event, code=str))
    return (
        f"Job {event.job_name!r} failed {event.count} times in the last {limit} "
        f"(the check fires at {event.failures})" + (f"; runs {runs}." if runs else ".")
    )


def check_text(event: CheckEvent) -> str:
    """The notification and fallback text, escaped."""
    text = f"Check {event.check_name!r} fired for job {event.job_name!r}: {check_summary(event)}"
    return clip(escape_mrkdwn(text), MAX_TEXT_CHARS)


def check_message(event: CheckEvent, *, webserver_base_url: str | None = None) -> SlackMessage:
    """The alert for a check event: headline, what was seen against the limit, facts, tags,
    and a "View run" button for a stuck run."""
    blocks: list[dict[str, Any]] = [
        section(f"{CHECK_EMOJI[event.kind]} *{_title(event)}* · job {code(event.job_name)}"),
        section(_detail(event)),
        _facts(event),
    ]
    if event.run is not None and event.run.tags:
        shown = "  ".join(code(f"{key}={value}") for key, value in sorted(event.run.tags.items()))
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(shown, 2_000)}]}
        )
    if event.run_id is not None:
        blocks.extend(view_run_button(run_url(webserver_base_url, event.run_id)))
    return SlackMessage(text=check_text(event), blocks=tuple(blocks[:MAX_BLOCKS]))


def _title(event: CheckEvent) -> str:
    if event.kind is CheckKind.RUN_STUCK:
        return f"Run still {event.run_state} after {_stuck_for(event)}"
    if event.kind is CheckKind.NOT_FRESH:
        return f"No successful run in {window(event.within_s)}"
    return f"{event.count} failed runs in {window(event.within_s)}"


def _detail(event: CheckEvent) -> str:
    limit = f"*{window(event.within_s)}*"
    if event.kind is CheckKind.RUN_STUCK:
        return (
            f"Run {code(_run_name(event))} ({code(event.run_id)}) has been "
            f"*{event.run_state}* for *{_stuck_for(event)}*; the limit is {limit}."
        )
    if event.kind is CheckKind.NOT_FRESH:
        return _freshness_detail(event, limit)
    return _failures_detail(event, limit)


def _freshness_detail(event: CheckEvent, limit: str) -> str:
    if event.last_success_at is not None:
        name = event.last_success_run_name
        run = f" (run {code(name)})" if name else ""
        when = f"{event.last_success_at:%Y-%m-%d %H:%M} UTC"
        return f"Last success: *{when}*{run}; the window is {limit}."
    since = event.watching_since or event.occurred_at
    return (
        f"No success seen since the check began watching at *{since:%Y-%m-%d %H:%M} UTC*; "
        f"the window is {limit}."
    )


def _failures_detail(event: CheckEvent, limit: str) -> str:
    lines = [
        f"*{event.count} failures* in the last {limit} "
        f"(the check fires at {event.failures or event.count})."
    ]
    if event.failed_run_ids:
        lines.append("Failed runs: " + ", ".join(_failed_runs(event, code=code)))
    if event.last_error:
        lines.append("Last error:\n" + code_block(event.last_error, limit=1_000))
    return "\n".join(lines)


def _last_seen(event: CheckEvent) -> str:
    if event.last_success_at is not None:
        run = f" (run {event.last_success_run_name})" if event.last_success_run_name else ""
        return f"last success {event.last_success_at:%Y-%m-%d %H:%M} UTC{run}"
    since = event.watching_since or event.occurred_at
    return f"never seen since {since:%Y-%m-%d %H:%M} UTC"


def _failed_runs(event: CheckEvent, *, code: Callable[[str], str]) -> list[str]:
    """Each counted failed run as ``name (id)``, or its id alone when the event has no
    names (published by an older worker)."""
    names = event.failed_run_names
    if len(names) != len(event.failed_run_ids):
        return [code(run_id) for run_id in event.failed_run_ids]
    pairs = zip(names, event.failed_run_ids, strict=True)
    return [f"{code(name)} ({code(run_id)})" for name, run_id in pairs]


def _run_name(event: CheckEvent) -> str:
    return event.run.run_name if event.run is not None else str(event.run_id)


def _facts(event: CheckEvent) -> dict[str, Any]:
    facts: list[tuple[str, str]] = [
        ("Check", code(event.check_name)),
        ("Job", code(event.job_name)),
    ]
    if event.run is not None:
        facts.append(("Run", f"{code(event.run.run_name)} ({code(event.run.run_id)})"))
    if event.state_since is not None:
        facts.append(("In this state since", f"{event.state_since:%Y-%m-%d %H:%M} UTC"))
    label = "Limit" if event.kind is CheckKind.RUN_STUCK else "Window"
    facts.append((label, window(event.within_s)))
    facts.append(("Fired at", f"{event.occurred_at:%Y-%m-%d %H:%M} UTC"))
    fields = [
        {"type": "mrkdwn", "text": clip(f"*{name}*\n{value}", MAX_FIELD_CHARS)}
        for name, value in facts
    ]
    return {"type": "section", "fields": fields}


def _stuck_for(event: CheckEvent) -> str:
    if event.state_since is None:
        return f"more than {window(event.within_s)}"
    seconds = max(event.occurred_at - event.state_since, timedelta(0)).total_seconds()
    # Whole minutes past the first: "2 h 5 min", not "2 h 5 min 12 s".
    return window(seconds if seconds < 60 else seconds // 60 * 60)
