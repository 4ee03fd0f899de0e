"""The Slack notifiers against a real HTTP stand-in for the Slack API (no mocks)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from bus import ConfigError, EnvVar, ResourceInitContext
from notifiers import (
    ConsoleNotifier,
    NotifierSettings,
    PermanentNotifierError,
    SlackNotifier,
    SlackResource,
    SlackWebhookNotifier,
    SlackWebhookResource,
    TransientNotifierError,
    alert_message,
    build_web_client,
)
from notifiers.testing import INCOMING_WEBHOOK, FakeSlackServer, ScriptedReply
from tests.notifiers.events import op_failed


@pytest.fixture
def slack() -> Iterator[FakeSlackServer]:
    with FakeSlackServer() as server:
        yield server


def notifier(slack: FakeSlackServer, *, retries: int = 2) -> SlackNotifier:
    client = build_web_client(
        "xoxb-1", base_url=slack.base_url, max_retries=retries, backoff_s=0.01
    )
    return SlackNotifier(client, channel="#a")


def test_post_sends_chat_post_message_and_returns_ts(slack: FakeSlackServer) -> None:
    ts = notifier(slack).post("hello")
    [body] = slack.messages()
    assert body["channel"] == "#a" and body["text"] == "hello"
    assert ts is not None and ts.endswith(".000001")


def test_rate_limit_is_honoured_then_the_message_goes_through(slack: FakeSlackServer) -> None:
    slack.fail_next(FakeSlackServer.rate_limited(retry_after_s=1))
    notifier(slack).post("after a 429")
    first, second = slack.wait_for_requests(2)
    assert second.received_at - first.received_at >= 0.9


def test_server_errors_and_dropped_connections_are_retried(slack: FakeSlackServer) -> None:
    slack.fail_next(FakeSlackServer.server_error(), ScriptedReply(drop_connection=True))
    assert notifier(slack).post("third time lucky") is not None
    assert [r.method for r in slack.requests] == ["chat.postMessage"] * 3


def test_an_outage_longer_than_the_retries_is_transient(slack: FakeSlackServer) -> None:
    slack.fail_next(*[FakeSlackServer.server_error()] * 3)
    with pytest.raises(
        TransientNotifierError,
        match="'#a' failed chat.postMessage after retries: got 'internal_error' \\(HTTP 500\\)",
    ) as caught:
        notifier(slack, retries=2).post("x")
    assert len(slack.requests) == 3
    assert caught.value.retryable is True


def test_a_rate_limit_outlasting_the_retries_reports_retry_after(slack: FakeSlackServer) -> None:
    slack.fail_next(FakeSlackServer.rate_limited(retry_after_s=0))
    with pytest.raises(TransientNotifierError, match="got 'ratelimited' \\(HTTP 429\\)") as caught:
        notifier(slack, retries=0).post("x")
    assert caught.value.retry_after_s == 0


@pytest.mark.parametrize(
    ("code", "fix"),
    [
        ("invalid_auth", "Check the bot token"),
        ("channel_not_found", "Check the channel name or id"),
        ("not_in_channel", "Invite the bot to the channel"),
    ],
)
def test_permanent_errors_fail_fast_with_the_fix(
    slack: FakeSlackServer, code: str, fix: str
) -> None:
    slack.fail_next(FakeSlackServer.api_error(code))
    with pytest.raises(
        PermanentNotifierError, match=f"'#a' refused the message for good: got '{code}'. {fix}"
    ) as caught:
        notifier(slack).post("x")
    assert len(slack.requests) == 1
    assert caught.value.retryable is False


def test_hostile_text_arrives_inert(slack: FakeSlackServer) -> None:
    event = op_failed(message="<!channel> click <http://x|y>", step_key="<!here>")
    notifier(slack).send(alert_message(event))
    [request] = slack.requests
    raw = json.dumps(request.body)
    assert "<!channel>" not in raw and "<http://x|y>" not in raw and "<!here>" not in raw
    assert "&lt;!channel&gt; click &lt;http://x|y&gt;" in raw


def test_a_100_kb_traceback_is_accepted_after_truncation(slack: FakeSlackServer) -> None:
    traceback = "x" * 100_000 + "\nFinalError: the last line"
    notifier(slack).send(alert_message(op_failed(traceback=traceback)))
    [body] = slack.messages()
    assert len(json.dumps(body)) < 12_000
    assert "FinalError: the last line```" in body["blocks"][3]["text"]["text"]


def test_replies_thread_and_updates_replace(slack: FakeSlackServer) -> None:
    slack_notifier = notifier(slack)
    parent = slack_notifier.post("first")
    assert parent is not None
    slack_notifier.post("reply", thread_ts=parent)
    slack_notifier.update(parent, alert_message(op_failed()))
    first, reply, update = slack.requests
    assert reply.body["thread_ts"] == parent and "thread_ts" not in first.body
    assert update.method == "chat.update" and update.body["ts"] == parent


def test_incoming_webhook_posts_and_maps_errors(slack: FakeSlackServer) -> None:
    webhook = SlackWebhookNotifier(slack.webhook_url, max_retries=1, backoff_s=0.01)
    webhook.send(alert_message(op_failed()))
    slack.fail_next(FakeSlackServer.rate_limited(retry_after_s=0))
    webhook.post("after a 429")
    slack.fail_next(FakeSlackServer.webhook_error(404, "no_service"))
    with pytest.raises(PermanentNotifierError, match="got 'no_service' \\(HTTP 404\\)"):
        webhook.post("gone")
    assert [r.method for r in slack.requests] == [INCOMING_WEBHOOK] * 4
    assert "secret" not in repr(webhook) and "secret" not in webhook.destination


def test_incoming_webhook_outage_is_transient(slack: FakeSlackServer) -> None:
    slack.fail_next(*[FakeSlackServer.server_error()] * 2)
    with pytest.raises(TransientNotifierError, match="failed after retries: got .* \\(HTTP 500\\)"):
        SlackWebhookNotifier(slack.webhook_url, max_retries=1, backoff_s=0.01).post("x")


def test_slack_resource_falls_back_to_the_console_without_a_token() -> None:
    built = SlackResource().create_resource(ResourceInitContext(env={}))
    assert isinstance(built, ConsoleNotifier)


def test_slack_resource_takes_the_base_url_from_the_worker_settings(
    slack: FakeSlackServer,
) -> None:
    env = {"T": "xoxb-env", "SLACK_CHANNEL": "#env"}
    settings = NotifierSettings(slack_base_url=slack.base_url)
    built = SlackResource(token=EnvVar("T")).create_resource(
        ResourceInitContext(env=env, settings=settings)
    )
    assert isinstance(built, SlackNotifier)
    built.post("hi")
    [request] = slack.requests
    assert request.headers["Authorization"] == "Bearer xoxb-env"
    assert request.body["channel"] == "#env"
    assert repr(built) == "<SlackNotifier channel='#env' posted=1>"


def test_slack_webhook_resource_resolves_its_url_in_the_worker(slack: FakeSlackServer) -> None:
    env = {"SLACK_WEBHOOK_URL": slack.webhook_url}
    built = SlackWebhookResource().create_resource(ResourceInitContext(env=env))
    built.post("hi")
    assert (
        SlackWebhookResource(url=SecretStr(slack.webhook_url))
        .create_resource(ResourceInitContext())
        .destination
        == f"slack-webhook:127.0.0.1:{slack.port}"
    )
    assert [r.method for r in slack.requests] == [INCOMING_WEBHOOK]


def test_the_slack_base_url_setting_is_validated() -> None:
    with pytest.raises(ConfigError, match="^HOOKBUS_SLACK_BASE_URL='slack.com' is not a valid URL"):
        NotifierSettings(slack_base_url="slack.com")


def test_secrets_stay_out_of_debug_logs(
    slack: FakeSlackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    notifier(slack).post("hi")
    SlackWebhookNotifier(slack.webhook_url).post("hi")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "xoxb-1" not in logged and "/services/T000/B000/secret" not in logged
    assert "slack message posted channel=#a" in logged
