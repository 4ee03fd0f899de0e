"""The Slack notifier against a real HTTP stand-in for the Slack API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bus import EnvVar, ResourceInitContext
from notifiers import (
    PermanentNotifierError,
    SlackNotifier,
    SlackResource,
    build_web_client,
    escape_mrkdwn,
)
from notifiers.console import ConsoleNotifier
from notifiers.testing import FakeSlackServer


@pytest.fixture
def slack() -> Iterator[FakeSlackServer]:
    with FakeSlackServer() as server:
        yield server


def test_post_sends_chat_post_message_and_returns_ts(slack: FakeSlackServer) -> None:
    notifier = SlackNotifier(build_web_client("xoxb-1", base_url=slack.base_url), channel="#a")
    ts = notifier.post("hello")
    [body] = slack.messages()
    assert body["channel"] == "#a" and body["text"] == "hello"
    assert ts is not None and ts.endswith(".000001")


def test_rate_limit_is_honoured_then_the_message_goes_through(slack: FakeSlackServer) -> None:
    slack.fail_next(FakeSlackServer.rate_limited(retry_after_s=1))
    notifier = SlackNotifier(build_web_client("xoxb-1", base_url=slack.base_url), channel="#a")
    notifier.post("after a 429")
    first, second = slack.wait_for_requests(2)
    assert second.received_at - first.received_at >= 0.9


def test_permanent_errors_fail_fast_with_the_fix(slack: FakeSlackServer) -> None:
    slack.fail_next(FakeSlackServer.api_error("invalid_auth"))
    notifier = SlackNotifier(build_web_client("xoxb-bad", base_url=slack.base_url), channel="#a")
    with pytest.raises(PermanentNotifierError, match="invalid_auth. Check the bot token"):
        notifier.post("x")
    assert len(slack.requests) == 1


def test_user_text_is_made_inert() -> None:
    assert escape_mrkdwn("<!channel> & <http://x|y>") == "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"


def test_slack_resource_falls_back_to_the_console_without_a_token() -> None:
    built = SlackResource().create_resource(ResourceInitContext(env={}))
    assert isinstance(built, ConsoleNotifier)


def test_slack_resource_reads_token_channel_and_base_url_from_the_environment(
    slack: FakeSlackServer,
) -> None:
    env = {"T": "xoxb-env", "SLACK_CHANNEL": "#env", "HOOKBUS_SLACK_BASE_URL": slack.base_url}
    built = SlackResource(token=EnvVar("T")).create_resource(ResourceInitContext(env=env))
    assert isinstance(built, SlackNotifier)
    built.post("hi")
    [request] = slack.requests
    assert request.headers["Authorization"] == "Bearer xoxb-env"
    assert request.body["channel"] == "#env"
    assert "xoxb-env" not in repr(built)
