"""Pure message formatting: alerts as Slack Block Kit plus a plain-text fallback.

Everything here is a pure function of an event (no I/O), so it is tested without Slack.
Three promises:

- **Inert user text.** Op names, job names, tags, exception messages and tracebacks come
  from user code. ``&``, ``<`` and ``>`` become entities (``<!channel>``, ``<@U1>`` and
  ``<http://x|y>`` cannot ping or link), and values are shown in code spans or code
  blocks, where ``*bold*``/``_italic_`` do not apply; backticks inside them are replaced
  so that they cannot close the span.
- **Never too big.** Slack refuses a message over its limits (50 blocks, 3,000 characters
  per section, 2,000 per field, 150 per header…); we cut to fit, and say so, instead.
- **Readable at 3 a.m.** What failed, where, which run, which attempt, how long, the error,
  the last lines of the traceback, the tags, and a "View run" button.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from bus.events import OpEvent, RunEvent

#: Slack's limits (https://api.slack.com/reference/block-kit/blocks).
MAX_BLOCKS: Final = 50
MAX_SECTION_CHARS: Final = 3_000
MAX_FIELD_CHARS: Final = 2_000
MAX_FIELDS: Final = 10
MAX_BUTTON_URL_CHARS: Final = 3_000
#: The top-level ``text`` (notification and fallback): Slack truncates at 40,000 and
#: recommends under 4,000.
MAX_TEXT_CHARS: Final = 4_000
#: Identifiers (job, op, run id, tag values) longer than this are cut.
MAX_NAME_CHARS: Final = 200
#: How many failed ops a grouped message lists before "and N more" (in sections of up to
#: 3,000 characters each, well under the 50-block limit).
MAX_GROUP_LINES: Final = 100

#: An emoji per state, so the state reads before the words.
STATE_EMOJI: Final = {
    "failed": ":red_circle:",
    "crashed": ":boom:",
    "cancelled": ":no_entry_sign:",
    "cancelling": ":no_entry_sign:",
    "retrying": ":repeat:",
    "completed": ":large_green_circle:",
    "running": ":arrow_forward:",
    "skipped": ":white_circle:",
    "pending": ":hourglass:",
}
_CUT = "…[cut]"
_PARTIAL_ENTITY_AT_END = re.compile(r"&[a-z]{0,3}$")
_PARTIAL_ENTITY_AT_START = re.compile(r"^[a-z]{0,3};")


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """What to send: the fallback/notification ``text`` and the Block Kit ``blocks``."""

    text: str
    blocks: tuple[dict[str, Any], ...] = ()

    def __repr__(self) -> str:
        return f"<SlackMessage blocks={len(self.blocks)} text={self.text[:60]!r}>"


def escape_mrkdwn(text: str) -> str:
    """Make user text inert in Slack: ``&``, ``<`` and ``>`` become entities.

    That alone defuses ``<!channel>``, ``<@U123>`` and ``<http://x|y>`` links.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int, *, keep: Literal["head", "tail"] = "head") -> str:
    """Cut already escaped ``text`` to at most ``limit`` characters, marking the cut.

    Never leaves half an entity (``&am``) at the cut.
    """
    if len(text) <= limit:
        return text
    room = max(0, limit - len(_CUT))
    if keep == "head":
        return _PARTIAL_ENTITY_AT_END.sub("", text[:room]) + _CUT
    return _CUT + _PARTIAL_ENTITY_AT_START.sub("", text[len(text) - room :])


def code(value: object, *, limit: int = MAX_NAME_CHARS) -> str:
    """``value`` as an inert inline code span (one line, no backticks, escaped, cut)."""
    text = " ".join(str(value).split()).replace("`", "ˋ")
    return f"`{clip(escape_mrkdwn(text), limit)}`"


def code_block(text: str, *, limit: int, keep: Literal["head", "tail"] = "head") -> str:
    """``text`` as an inert code block of at most ``limit`` characters in total."""
    body = escape_mrkdwn(text.strip("\n")).replace("```", "ˋˋˋ") or " "
    return f"```{clip(body, limit - 6, keep=keep)}```"


def section(text: str) -> dict[str, Any]:
    """A mrkdwn section block, cut to Slack's limit."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION_CHARS)}}


def run_url(base_url: str | None, run_id: str) -> str | None:
    """The "View run" link of ``run_id`` under ``base_url``, if one is configured."""
    if not base_url:
        return None
    url = f"{base_url.rstrip('/')}/runs/{run_id}"
    return url if len(url) <= MAX_BUTTON_URL_CHARS else None


def view_run_button(url: str | None) -> list[dict[str, Any]]:
    """An actions block with a "View run" button, or nothing without a URL."""
    if url is None:
        return []
    button = {
        "type": "button",
        "text": {"type": "plain_text", "text": "View run"},
        "url": url,
        "action_id": "hookbus_view_run",
    }
    return [{"type": "actions", "elements": [button]}]


def subject(event: RunEvent | OpEvent) -> str:
    """What the event is about, as plain words: ``Op 'load' in job 'etl'`` / ``Job 'etl'``."""
    if isinstance(event, OpEvent):
        return f"Op {event.op.step_key!r} in job {event.job_name!r}"
    return f"Job {event.job_name!r}"


def duration_s(event: RunEvent | OpEvent) -> float | None:
    """Seconds from the run's start to this event, when the run has started."""
    started = event.run.started_at
    return None if started is None else (event.occurred_at - started).total_seconds()


def format_duration(seconds: float | None) -> str:
    """``0.4 s``, ``12 s``, ``3 min 05 s``, ``2 h 01 min``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def failure_text(event: RunEvent | OpEvent) -> str:
    """A one-glance plain-text alert (the notification and fallback text), escaped."""
    lines = [f"{subject(event)} {event.to_state} (run {event.run_id})"]
    if event.error is not None:
        lines.append(f"{event.error.type}: {event.error.message}")
    return clip(escape_mrkdwn("\n".join(lines)), MAX_TEXT_CHARS)


def alert_message(
    event: RunEvent | OpEvent, *, webserver_base_url: str | None = None
) -> SlackMessage:
    """The full alert for one event: header line, facts, error, traceback tail, tags, link."""
    blocks: list[dict[str, Any]] = [section(_headline(event)), _facts(event)]
    if event.error is not None:
        blocks.append(
            section(
                f"*{code(event.error.type)}*\n"
                + code_block(event.error.message, limit=MAX_SECTION_CHARS - 260)
            )
        )
        if event.error.traceback:
            blocks.append(
                section(
                    "*Traceback (last lines)*\n"
                    + code_block(event.error.traceback, limit=MAX_SECTION_CHARS - 40, keep="tail")
                )
            )
    blocks.extend(_tags(event.run.tags))
    blocks.extend(view_run_button(run_url(webserver_base_url, event.run_id)))
    return SlackMessage(text=failure_text(event), blocks=tuple(blocks[:MAX_BLOCKS]))


def _headline(event: RunEvent | OpEvent) -> str:
    emoji = STATE_EMOJI.get(str(event.to_state), ":grey_question:")
    if isinstance(event, OpEvent):
        what = f"Op {code(event.op.step_key)} {event.to_state}"
    else:
        what = f"Run {event.to_state}"
    return f"{emoji} *{what}* in job {code(event.job_name)}"


def _facts(event: RunEvent | OpEvent) -> dict[str, Any]:
    facts: list[tuple[str, str]] = [
        ("Job", code(event.job_name)),
        ("Run", code(event.run_id)),
        ("State", str(event.to_state)),
    ]
    if isinstance(event, OpEvent):
        facts.insert(1, ("Op", code(event.op.step_key)))
        facts.append(("Attempt", f"{event.op.attempt} of {event.op.max_attempts}"))
        facts.append(("Run time", format_duration(duration_s(event))))
    else:
        facts.append(("Attempt", str(event.run.attempt)))
        facts.append(("Duration", format_duration(duration_s(event))))
    fields = [
        {"type": "mrkdwn", "text": clip(f"*{name}*\n{value}", MAX_FIELD_CHARS)}
        for name, value in facts[:MAX_FIELDS]
    ]
    return {"type": "section", "fields": fields}


def _tags(tags: Mapping[str, str]) -> list[dict[str, Any]]:
    if not tags:
        return []
    shown = "  ".join(code(f"{key}={value}") for key, value in sorted(tags.items()))
    return [{"type": "context", "elements": [{"type": "mrkdwn", "text": clip(shown, 2_000)}]}]


def group_message(
    events: Sequence[RunEvent | OpEvent],
    *,
    total: int,
    webserver_base_url: str | None = None,
) -> SlackMessage:
    """One message for a burst: ``total`` failures, listing up to ``MAX_GROUP_LINES`` of them.

    Args:
        events: the failures to list (the burst's first is usually already posted).
        total: how many failed in the burst, including any not in ``events``.
        webserver_base_url: for the "View run" button of the first event's run.
    """
    first = events[0]
    runs = sorted({event.run_id for event in events})
    where = f"run {code(runs[0])}" if len(runs) == 1 else f"{len(runs)} runs"
    lines = [_group_line(event) for event in events[:MAX_GROUP_LINES]]
    if len(events) > MAX_GROUP_LINES:
        lines.append(f"…and {len(events) - MAX_GROUP_LINES} more")
    count = failures_phrase(total)
    headline = f"{STATE_EMOJI['failed']} *{count}* in job {code(first.job_name)}, {where}"
    text = clip(
        escape_mrkdwn(f"{count} in job {first.job_name!r}: ")
        + ", ".join(_plain_name(event) for event in events[:MAX_GROUP_LINES]),
        MAX_TEXT_CHARS,
    )
    blocks = [section(headline), *_sections(lines)]
    blocks.extend(view_run_button(run_url(webserver_base_url, first.run_id)))
    return SlackMessage(text=text, blocks=tuple(blocks[:MAX_BLOCKS]))


def _sections(lines: Sequence[str]) -> list[dict[str, Any]]:
    """``lines`` packed into as few sections as fit Slack's per-section limit."""
    chunks: list[list[str]] = [[]]
    size = 0
    for line in lines:
        if chunks[-1] and size + len(line) + 1 > MAX_SECTION_CHARS:
            chunks.append([])
            size = 0
        chunks[-1].append(line)
        size += len(line) + 1
    return [section("\n".join(chunk)) for chunk in chunks if chunk]


def _plain_name(event: RunEvent | OpEvent) -> str:
    return escape_mrkdwn(event.op.step_key if isinstance(event, OpEvent) else f"run {event.run_id}")


def failures_phrase(count: int) -> str:
    """``1 failure``, ``3 failures``."""
    return f"{count} failure" if count == 1 else f"{count} failures"


def running_status_line(failures: int) -> str:
    """The first message's top line while the run goes on: how many failures so far."""
    return (
        f"{STATE_EMOJI['failed']} *{failures_phrase(failures)}* in this run so far; see the thread"
    )


def final_status_line(event: RunEvent, *, failures: int) -> str:
    """The first message's top line once the run ended: its final state and failure count."""
    emoji = STATE_EMOJI.get(str(event.to_state), ":grey_question:")
    recovered = " (recovered)" if event.to_state == "completed" else ""
    return f"{emoji} Run *{event.to_state}{recovered}*; {failures} failure(s); see the thread"


def _group_line(event: RunEvent | OpEvent) -> str:
    name = event.op.step_key if isinstance(event, OpEvent) else f"run {event.run_id}"
    error = event.error
    detail = "" if error is None else f" {code(f'{error.type}: {error.message}', limit=160)}"
    return f"• {code(name, limit=80)} {event.to_state}{detail}"


def final_state_message(
    event: RunEvent, *, failures: int, webserver_base_url: str | None = None
) -> SlackMessage:
    """The thread follow-up when a run that alerted ends (failed, crashed, recovered …)."""
    emoji = STATE_EMOJI.get(str(event.to_state), ":grey_question:")
    recovered = " (recovered)" if event.to_state == "completed" else ""
    headline = (
        f"{emoji} *Run {event.to_state}{recovered}* in job {code(event.job_name)} after "
        f"{format_duration(duration_s(event))}; {failures} failure(s) alerted in this thread"
    )
    blocks = [section(headline)]
    if event.error is not None:
        blocks.append(
            section(f"*{code(event.error.type)}*\n" + code_block(event.error.message, limit=2_000))
        )
    blocks.extend(view_run_button(run_url(webserver_base_url, event.run_id)))
    text = clip(
        escape_mrkdwn(f"Run {event.run_id} of job {event.job_name!r} {event.to_state}"),
        MAX_TEXT_CHARS,
    )
    return SlackMessage(text=text, blocks=tuple(blocks))


def with_status_line(message: SlackMessage, status: str) -> SlackMessage:
    """``message`` with a context line on top (e.g. the run's final state), for chat.update."""
    line = {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(status, 2_000)}]}
    blocks = (line, *message.blocks)
    return SlackMessage(text=message.text, blocks=blocks[:MAX_BLOCKS])
