"""Notification rules and destinations: matching, validation, indexing, reprs."""

from __future__ import annotations

import types

import pytest
from pydantic import SecretStr

from bus import EnvVar, OpState, ResourceInitContext, RunState
from notifiers import (
    Console,
    ConsoleNotifier,
    JsonLinesFile,
    NotificationRule,
    NotifierConfigError,
    SlackChannel,
    SlackIncomingWebhook,
    Webhook,
)
from notifiers.destinations import MessageSink, WebhookSink
from notifiers.noise import fingerprint
from sensors import CodeLocation, Definitions
from sensors.errors import CodeLocationError
from tests.notifiers.events import op_failed, run_ended


def test_a_rule_matches_states_jobs_and_tags() -> None:
    rule = NotificationRule(
        name="gold",
        destinations=[Console()],
        jobs=[types.SimpleNamespace(name="nightly_etl"), "billing"],
        tags={"tier": "gold"},
    )
    assert rule.matches(op_failed(tags={"tier": "gold"}))
    assert rule.matches(
        run_ended(RunState.CRASHED).model_copy(update={"run": op_failed(tags={"tier": "gold"}).run})
    )
    assert not rule.matches(op_failed(tags={"tier": "silver"}))
    assert not rule.matches(op_failed(job="other", tags={"tier": "gold"}))
    assert not rule.matches(run_ended(RunState.COMPLETED))
    assert rule.follows(run_ended(RunState.COMPLETED))  # it may close a thread
    assert not rule.follows(run_ended(RunState.COMPLETED, job="other"))
    assert repr(rule) == (
        "<NotificationRule name='gold' jobs=['billing', 'nightly_etl'] "
        "destinations=['console:console']>"
    )


def test_op_alerts_can_be_turned_off() -> None:
    runs_only = NotificationRule(name="runs", destinations=[Console()], op_states=[])
    assert not runs_only.matches(op_failed())
    retrying = NotificationRule(name="r", destinations=[Console()], op_states=[OpState.RETRYING])
    assert not retrying.matches(op_failed())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "on call"}, "notification rule name 'on call' is not allowed: got 'on call'"),
        ({"destinations": []}, "notification rule 'r' has no destinations: got \\[\\]"),
        (
            {"destinations": [Console(), Console()]},
            "names a destination twice: got \\['console:console', 'console:console'\\]",
        ),
        (
            {"group_window_s": -1},
            "has a negative window: got dedupe_window_s=3600.0, group_window_s=-1",
        ),
    ],
)
def test_invalid_rules_are_refused_at_import(options: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"name": "r", "destinations": [Console()], **options}
    with pytest.raises(NotifierConfigError, match=message):
        NotificationRule(**values)  # type: ignore[arg-type]


def test_destination_names_must_fit_in_key_names() -> None:
    with pytest.raises(NotifierConfigError, match="destination name 'slack:#a b' has characters"):
        NotificationRule(name="r", destinations=[SlackChannel("#a b")])


def test_destination_names() -> None:
    assert SlackChannel("#alerts").name == "slack:#alerts"
    assert SlackIncomingWebhook(label="team").name == "slack-webhook:team"
    assert Webhook(url="https://hooks.example.com/x?token=1").name == "webhook:hooks.example.com"
    assert Webhook(url=EnvVar("PAGER_URL")).name == "webhook:PAGER_URL"
    assert JsonLinesFile("/tmp/a/alerts.jsonl").name == "file:alerts.jsonl"


def test_sinks_are_built_in_the_worker_from_its_environment(tmp_path: object) -> None:
    context = ResourceInitContext(
        env={"PAGER_URL": "http://127.0.0.1:9/p", "S": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    )
    webhook = Webhook(url=EnvVar("PAGER_URL"), secret=EnvVar("S"), headers={"X": "1"}).create_sink(
        context
    )
    assert isinstance(webhook, WebhookSink) and webhook.threads is False
    assert (
        repr(webhook)
        == "<WebhookSink <WebhookNotifier destination='webhook:http://127.0.0.1:9' posted=0>>"
    )
    console = SlackChannel("#a").create_sink(ResourceInitContext(env={}))
    assert isinstance(console, MessageSink) and isinstance(console.notifier, ConsoleNotifier)
    slack = SlackChannel("#a", token=SecretStr("xoxb-secret")).create_sink(context)
    assert "xoxb-secret" not in repr(slack) and slack.threads
    with pytest.raises(Exception, match="environment variable 'PAGER_URL' is not set"):
        Webhook(url=EnvVar("PAGER_URL")).create_sink(ResourceInitContext(env={}))


def test_the_same_failure_has_the_same_fingerprint() -> None:
    assert fingerprint(op_failed(message="row 41 in 'a.csv'", run_id="1")) == fingerprint(
        op_failed(message="row 42 in 'b.csv'", run_id="2")
    )
    assert fingerprint(op_failed(message="disk full")) != fingerprint(op_failed(message="row 1"))
    assert fingerprint(op_failed("load")) != fingerprint(op_failed("extract"))


def test_code_locations_index_rules_from_the_module_and_definitions() -> None:
    loc = CodeLocation.load("tests.code_locations.alerting")
    assert list(loc.rules) == ["oncall"]
    extra = NotificationRule(name="extra", destinations=[Console()])
    module = types.ModuleType("tests.fake_location")
    module.defs = Definitions(notification_rules=[extra])  # type: ignore[attr-defined]
    assert CodeLocation.from_module(module).rules == {"extra": extra}


def test_two_rules_with_one_name_are_refused() -> None:
    module = types.ModuleType("tests.fake_location")
    module.a = NotificationRule(name="same", destinations=[Console()])  # type: ignore[attr-defined]
    module.b = NotificationRule(name="same", destinations=[Console("other")])  # type: ignore[attr-defined]
    with pytest.raises(CodeLocationError, match="notification rule name 'same' is used twice"):
        CodeLocation.from_module(module)
