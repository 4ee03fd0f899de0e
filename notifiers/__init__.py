"""Where alerts go: Slack, webhooks, the console, a JSON-lines file; and how they read.

A hook or sensor in a worker calls a notifier's ``post``; ``SlackResource`` makes one
available as ``context.resources.slack``. ``NotificationRule`` values in a code location
send alerts without any hook, with threads, dedupe, grouping, rate limits and silences
(``Alerting``). ``notifiers.format`` turns events into Block Kit
messages with every user-supplied string escaped.
"""

from notifiers.alerting import Alerting
from notifiers.console import ConsoleNotifier
from notifiers.destinations import (
    Alert,
    AlertSink,
    Console,
    Destination,
    JsonLinesFile,
    SlackChannel,
    SlackIncomingWebhook,
    Webhook,
)
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
from notifiers.rules import NotificationRule
from notifiers.settings import NotifierSettings
from notifiers.silences import Silence, SilenceStore, new_silence, parse_duration
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
    "Alert",
    "AlertSink",
    "Alerting",
    "Console",
    "ConsoleNotifier",
    "Destination",
    "JsonLinesFile",
    "JsonLinesNotifier",
    "NotificationRule",
    "Notifier",
    "NotifierConfigError",
    "NotifierError",
    "NotifierSettings",
    "PermanentNotifierError",
    "Silence",
    "SilenceStore",
    "SlackChannel",
    "SlackIncomingWebhook",
    "SlackMessage",
    "SlackNotifier",
    "SlackResource",
    "SlackWebhookNotifier",
    "SlackWebhookResource",
    "TransientNotifierError",
    "Webhook",
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
    "new_silence",
    "parse_duration",
    "verify",
]
