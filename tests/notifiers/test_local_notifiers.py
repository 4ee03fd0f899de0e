"""The console and JSON-lines notifiers (local use), and the reprs of long-lived objects."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bus import Keys
from bus.types import ResourceInitContext
from notifiers import (
    Alerting,
    Console,
    ConsoleNotifier,
    JsonLinesNotifier,
    NotifierSettings,
    SilenceStore,
    SlackMessage,
    TransientNotifierError,
    alert_message,
)
from notifiers.delivery import Delivery
from notifiers.noise import NoiseControl
from notifiers.threads import ThreadStore
from tests.notifiers.events import op_failed


def test_json_lines_appends_one_record_per_alert(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "alerts.jsonl"
    notifier = JsonLinesNotifier(path)
    assert notifier.send(alert_message(op_failed())) == "1"
    assert notifier.post("second", thread_ts="1") == "2"
    first, second = JsonLinesNotifier.read(path)
    assert first["text"].startswith("Op 'load' in job 'nightly_etl' failed")
    assert first["blocks"] and first["thread_ts"] is None and first["destination"] == "alerts.jsonl"
    assert (second["text"], second["thread_ts"]) == ("second", "1")
    assert repr(notifier) == f"<JsonLinesNotifier path={str(path)!r} posted=2>"


def test_json_lines_reports_an_unwritable_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(TransientNotifierError, match="alert file .* cannot be written: got"):
        JsonLinesNotifier(blocker / "alerts.jsonl").post("x")


def test_console_shows_threads_indented() -> None:
    out = io.StringIO()
    console = ConsoleNotifier(label="#alerts", stream=out)
    parent = console.send(SlackMessage(text="first\nline two"))
    console.post("reply", thread_ts=parent)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("┌─ alert → #alerts") and lines[1:3] == ["│ first", "│ line two"]
    assert lines[4].startswith("    ↳ ┌─ alert → #alerts") and lines[5] == "      │ reply"
    assert repr(console) == "<ConsoleNotifier label='#alerts' posted=2>"


def test_reprs_of_the_alerting_runtime() -> None:
    client = aioredis.Redis()
    keys = Keys(prefix="p")
    alerting = Alerting(client, keys=keys, settings=NotifierSettings.model_construct(), env={})
    assert repr(alerting) == "<Alerting sinks=[] sent=0>"
    alerting.sink(Console())
    assert repr(alerting) == "<Alerting sinks=['console:console'] sent=0>"
    delivery = Delivery(NoiseControl(client, keys=keys), context=ResourceInitContext())
    assert repr(delivery) == "<Delivery sinks=[] sent=0>"
    assert repr(NoiseControl(client, keys=keys)) == "<NoiseControl prefix='p'>"
    assert repr(ThreadStore(client, keys=keys, ttl_s=60)) == "<ThreadStore prefix='p' ttl_s=60>"
    assert repr(SilenceStore(client, keys=keys)) == "<SilenceStore key='p:notify:silences'>"
    assert repr(SlackMessage(text="t", blocks=({"type": "divider"},))) == (
        "<SlackMessage blocks=1 text='t'>"
    )
