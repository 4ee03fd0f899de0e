"""Where alerts go: Slack, webhooks, the console, a JSON-lines file; and how they read.

A hook or sensor in a worker calls a notifier's ``post``; ``SlackResource`` makes one
available as ``context.resources.slack``. ``notifiers.format`` turns events into Block Kit
messages with every user-supplied string escaped.
"""

from notifiers.console import ConsoleNotifier
from notifiers.errors import (
    NotifierConfigError,
    NotifierError,
    PermanentNotifierError,
    TransientNotifierError,
    WebhookSignatureError,
)
from notifiers.format import (
    SlackMessage,
    alert_message,
    escape_mrkdwn,
    failure_text,
    group_message,
)
from notifiers.jsonl import JsonLinesNotifier
from notifiers.resource import SlackResource, SlackWebhookResource
from notifiers.settings import NotifierSettings
from notifiers.slack import SlackNotifier, SlackWebhookNotifier, build_web_client
from notifiers.types import Notifier
from notifiers.webhook import (
    WebhookBody,
    WebhookNotifier,
    WebhookRetryPolicy,
    generate_webhook_secret,
    verify,
)

__all__ = [
    "ConsoleNotifier",
    "JsonLinesNotifier",
    "Notifier",
    "NotifierConfigError",
    "NotifierError",
    "NotifierSettings",
    "PermanentNotifierError",
    "SlackMessage",
    "SlackNotifier",
    "SlackResource",
    "SlackWebhookNotifier",
    "SlackWebhookResource",
    "TransientNotifierError",
    "WebhookBody",
    "WebhookNotifier",
    "WebhookRetryPolicy",
    "WebhookSignatureError",
    "alert_message",
    "build_web_client",
    "escape_mrkdwn",
    "failure_text",
    "generate_webhook_secret",
    "group_message",
    "verify",
]
