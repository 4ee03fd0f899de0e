"""Block Kit alerts: complete at a glance, inert user text, within Slack's limits."""

from __future__ import annotations

import json

from bus import RunState
from notifiers import alert_message, escape_mrkdwn, group_message
from notifiers.format import (
    MAX_BLOCKS,
    MAX_FIELD_CHARS,
    MAX_SECTION_CHARS,
    MAX_TEXT_CHARS,
    clip,
    code,
    code_block,
    final_state_message,
    format_duration,
)
from tests.notifiers.events import op_failed, run_ended

HOSTILE = "<!channel> see <http://x|y> & *bold* `tick` ```fence"


def all_texts(blocks: tuple[dict[str, object], ...]) -> list[str]:
    """Every mrkdwn/plain text string anywhere in ``blocks``."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item)

    walk(blocks)
    return found


def test_alert_has_what_on_call_needs_at_a_glance() -> None:
    event = op_failed(tags={"team": "data", "tier": "gold"})
    message = alert_message(event, webserver_base_url="https://hookbus.example.com/")
    body = json.dumps(message.blocks, ensure_ascii=False)
    for needle in ("nightly_etl", "`load`", "`run-1`", "failed", "3 of 3", "3.2 s"):
        assert needle in body, needle
    assert "ValueError" in body and "warehouse is read-only" in body
    assert "```Traceback (most recent call last):" in body
    assert "`team=data`" in body and "`tier=gold`" in body
    [actions] = [block for block in message.blocks if block["type"] == "actions"]
    assert actions["elements"][0]["url"] == "https://hookbus.example.com/runs/run-1"
    assert message.text == (
        "Op 'load' in job 'nightly_etl' failed (run run-1)\nValueError: warehouse is read-only"
    )


def test_no_view_run_button_without_a_base_url() -> None:
    message = alert_message(op_failed())
    assert all(block["type"] != "actions" for block in message.blocks)


def test_user_text_cannot_ping_link_or_break_formatting() -> None:
    event = op_failed(step_key="load`<!here>", message=HOSTILE, tags={"owner": "<@U123>"})
    message = alert_message(event)
    everything = json.dumps([message.text, *all_texts(message.blocks)], ensure_ascii=False)
    for raw in ("<!channel>", "<!here>", "<http://x|y>", "<@U123>"):
        assert raw not in everything
    assert "&lt;!channel&gt;" in everything and "&lt;http://x|y&gt;" in everything
    # A backtick in a name cannot close its code span; a fence cannot close a code block.
    assert "`load`" not in everything and "`loadˋ&lt;!here&gt;`" in everything
    error_block = message.blocks[2]["text"]["text"]
    assert error_block.count("```") == 2


def test_a_100_kb_traceback_is_cut_to_its_tail_within_slack_limits() -> None:
    traceback = (
        "".join(f"  File 'x.py', line {n}, in f\n" for n in range(4000)) + "LastError: <boom>"
    )
    assert len(traceback) > 100_000
    message = alert_message(op_failed(traceback=traceback, message="m" * 50_000))
    assert len(message.blocks) <= MAX_BLOCKS
    for block in message.blocks:
        if "text" in block:
            assert len(block["text"]["text"]) <= MAX_SECTION_CHARS
        for field in block.get("fields", []):
            assert len(field["text"]) <= MAX_FIELD_CHARS
    assert len(message.text) <= MAX_TEXT_CHARS
    traceback_block = message.blocks[3]["text"]["text"]
    assert traceback_block.endswith("LastError: &lt;boom&gt;```")
    assert "…[cut]" in traceback_block


def test_clip_never_leaves_half_an_entity() -> None:
    escaped = escape_mrkdwn("a" * 8 + "<" * 10)
    head = clip(escaped, 18)
    assert len(head) <= 18 and head.endswith("…[cut]") and "&l…" not in head
    tail = clip(escaped, 14, keep="tail")
    assert len(tail) <= 14 and tail.startswith("…[cut]&lt;")


def test_code_helpers_keep_spans_single_and_closed() -> None:
    assert code("a\nb`c") == "`a bˋc`"
    assert code_block("x```y", limit=100) == "```xˋˋˋy```"


def test_durations_read_naturally() -> None:
    assert [format_duration(s) for s in (None, 0.42, 12, 185, 7260)] == [
        "-",
        "0.4 s",
        "12 s",
        "3 min 05 s",
        "2 h 01 min",
    ]


def test_group_message_counts_and_lists_the_burst() -> None:
    events = [op_failed(f"op_{n}", seq=n + 1, message="x" * 500) for n in range(120)]
    message = group_message(events, total=121)
    body = json.dumps(message.blocks, ensure_ascii=False)
    assert "*121 failures*" in body and "`op_0`" in body and "`op_99`" in body
    assert "`op_100`" not in body and "…and 20 more" in body
    assert len(message.blocks) <= MAX_BLOCKS
    assert all(len(block["text"]["text"]) <= MAX_SECTION_CHARS for block in message.blocks)
    assert message.text.startswith("121 failures in job 'nightly_etl': op_0, op_1")


def test_final_state_message_says_recovered() -> None:
    message = final_state_message(run_ended(RunState.COMPLETED), failures=2)
    assert "Run completed (recovered)" in message.blocks[0]["text"]["text"]
    assert "2 min 05 s" in message.blocks[0]["text"]["text"]


def test_group_fallback_text_names_runs_as_runs_and_counts_in_words() -> None:
    message = group_message([run_ended(RunState.FAILED, job="orders_etl")], total=1)

    assert message.text == "1 failure in job 'orders_etl': run run-1"
    assert "*1 failure* in job `orders_etl`" in json.dumps(message.blocks)
