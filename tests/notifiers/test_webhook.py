"""Webhooks against a real receiver on 127.0.0.1: signatures, retries, no retry on 4xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from notifiers import (
    PermanentNotifierError,
    TransientNotifierError,
    WebhookBody,
    WebhookNotifier,
    WebhookRetryPolicy,
    WebhookSignatureError,
    generate_webhook_secret,
    verify,
)
from notifiers.errors import NotifierConfigError
from notifiers.testing import WebhookReceiver
from notifiers.webhook import sign
from tests.notifiers.events import op_failed

SECRET = generate_webhook_secret()
FAST = WebhookRetryPolicy(max_retries=3, base_s=0.01, cap_s=0.05)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def body() -> WebhookBody:
    return WebhookBody.for_events((op_failed(),), text="Op 'load' failed", rule="oncall")


def test_a_delivery_is_signed_and_verifies(receiver: WebhookReceiver) -> None:
    notifier = WebhookNotifier(receiver.url, secret=SECRET, headers={"X-Team": "data"})
    sent = body()
    notifier.deliver(sent)
    [got] = receiver.received
    assert verify(got.body, got.headers, secret=SECRET) == sent
    assert got.headers["webhook-id"] == sent.data.events[0].event_id
    assert got.headers["X-Team"] == "data"
    wire = json.loads(got.body)
    assert wire["type"] == "hookbus.op.failed" and wire["schema_version"] == 1
    assert wire["data"]["events"][0]["op"]["step_key"] == "load"
    assert repr(notifier) == (
        f"<WebhookNotifier destination='webhook:http://127.0.0.1:{receiver.port}' posted=1>"
    )


def test_webhook_id_is_the_event_id_so_receivers_can_dedupe() -> None:
    event = op_failed()
    single = WebhookBody.for_events((event,), text="t")
    group = WebhookBody.for_events((event, op_failed("b")), text="t")
    assert single.message_id() == event.event_id
    assert group.message_id() == f"{event.event_id}.g2" and group.type == "hookbus.group"


def test_503_is_retried_with_backoff_and_then_delivered(receiver: WebhookReceiver) -> None:
    receiver.fail_next(503, 503)
    WebhookNotifier(receiver.url, secret=SECRET, retry=FAST).deliver(body())
    posts = receiver.wait_for(3)
    assert len({post.headers["webhook-id"] for post in posts}) == 1
    for post in posts:
        verify(post.body, post.headers, secret=SECRET)


def test_429_and_timeouts_are_retried(receiver: WebhookReceiver) -> None:
    receiver.fail_next(429)
    WebhookNotifier(receiver.url, retry=FAST).deliver(body())
    assert len(receiver.received) == 2
    slept: list[float] = []
    unreachable = WebhookNotifier(
        "http://127.0.0.1:9/nothing-listens", retry=FAST, timeout_s=0.5, sleep=slept.append
    )
    with pytest.raises(TransientNotifierError, match="failed 4 time\\(s\\): got ConnectError"):
        unreachable.deliver(body())
    assert len(slept) == 3 and all(0 <= s <= 0.05 for s in slept)


def test_400_is_not_retried(receiver: WebhookReceiver) -> None:
    receiver.answer_all(400)
    notifier = WebhookNotifier(receiver.url, secret=SECRET, retry=FAST)
    with pytest.raises(PermanentNotifierError, match="got HTTP 400 ''. Fix the receiver") as caught:
        notifier.deliver(body())
    assert len(receiver.received) == 1
    assert caught.value.retryable is False


def test_an_outage_outlasting_the_retries_is_transient(receiver: WebhookReceiver) -> None:
    receiver.answer_all(503)
    with pytest.raises(TransientNotifierError, match="failed 4 time\\(s\\): got HTTP 503"):
        WebhookNotifier(receiver.url, retry=FAST).deliver(body())
    assert len(receiver.received) == 4


def test_verify_refuses_a_wrong_secret_a_tampered_body_and_an_old_timestamp() -> None:
    payload = body().model_dump_json()
    headers = sign(SECRET, message_id="m1", timestamp=datetime.now(UTC), body=payload)
    with pytest.raises(WebhookSignatureError, match="'m1' failed verification: got No matching"):
        verify(payload, headers, secret=generate_webhook_secret())
    with pytest.raises(WebhookSignatureError, match="No matching signature"):
        verify(payload.replace("load", "lead"), headers, secret=SECRET)
    old = sign(
        SECRET, message_id="m2", timestamp=datetime.now(UTC) - timedelta(hours=1), body=payload
    )
    with pytest.raises(
        WebhookSignatureError, match="'m2' failed verification: got Message timestamp too old"
    ):
        verify(payload, old, secret=SECRET)


def test_secrets_must_be_standard_webhooks_secrets() -> None:
    with pytest.raises(
        NotifierConfigError, match="is not a Standard Webhooks secret: got a value starting 'hun'"
    ):
        WebhookNotifier("http://127.0.0.1:9/", secret="hunter2")
    with pytest.raises(NotifierConfigError, match="is not valid base64 after 'whsec_'"):
        WebhookNotifier("http://127.0.0.1:9/", secret="whsec_")


def test_the_retry_policy_honours_retry_after_and_gives_up() -> None:
    policy = WebhookRetryPolicy(max_retries=2, base_s=1, cap_s=10)
    assert policy.delay_s(1, retry_after_s=30) == 10
    assert 0 <= (policy.delay_s(2) or 0) <= 2
    assert policy.delay_s(3) is None


def test_a_custom_transport_is_used() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    WebhookNotifier("https://example.invalid/x", transport=httpx.MockTransport(handle)).deliver(
        body()
    )
    assert seen[0].headers["webhook-id"]
    assert "webhook-signature" not in seen[0].headers
