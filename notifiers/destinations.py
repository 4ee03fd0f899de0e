"""Where a notification rule sends: declarative specs, and the sinks a worker builds from them.

A spec (``SlackChannel``, ``SlackIncomingWebhook``, ``Webhook``, ``Console``,
``JsonLinesFile``) is an immutable value in the code location; it names its secrets as
``EnvVar`` so nothing secret is captured at definition time. The worker turns each into an
``AlertSink`` once, with its own environment and settings (``create_sink``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from pydantic import SecretStr

from bus.envvar import EnvVar
from bus.events import BusEvent
from bus.types import ResourceInitContext
from notifiers.console import ConsoleNotifier
from notifiers.errors import NotifierConfigError
from notifiers.format import SlackMessage
from notifiers.jsonl import JsonLinesNotifier
from notifiers.resource import SlackResource, SlackWebhookResource, notifier_settings
from notifiers.slack import SlackNotifier, SlackWebhookNotifier
from notifiers.webhook import WebhookBody, WebhookNotifier, WebhookRetryPolicy

_NAME = re.compile(r"^[A-Za-z0-9_.:#@/-]+$")


@dataclass(frozen=True, slots=True)
class Alert:
    """One message a rule sends: for which events, and how it reads."""

    rule: str
    events: tuple[BusEvent, ...]
    message: SlackMessage


@runtime_checkable
class AlertSink(Protocol):
    """A built destination. Calls block (they run in a worker thread)."""

    #: Whether replies can thread under a first message (its returned id).
    threads: bool

    def deliver(self, alert: Alert, *, thread_ts: str | None) -> str | None:
        """Send ``alert`` (in the thread ``thread_ts`` if given); return its message id."""
        ...

    def update(self, ts: str, message: SlackMessage) -> None:
        """Replace the message ``ts`` where the destination supports it; else do nothing."""
        ...


class Destination(Protocol):
    """A destination spec in a code location."""

    @property
    def name(self) -> str:
        """Stable and unique: keys threads, dedupe windows and rate limits."""
        ...

    @property
    def max_per_minute(self) -> int | None:
        """Messages per clock minute before alerts are held back (``None``: no limit)."""
        ...

    def create_sink(self, context: ResourceInitContext) -> AlertSink:
        """Build the sink in the worker, resolving secrets from its environment."""
        ...


def _checked(name: str) -> str:
    if not _NAME.match(name):
        raise NotifierConfigError(
            f"destination name {name!r} has characters Redis key names here cannot take: "
            f"got {name!r}. Use letters, digits and _ . : # @ / - (set label=...)."
        )
    return name


class MessageSink:
    """Adapts a message notifier (Slack, Slack webhook, console, file) to ``AlertSink``."""

    def __init__(
        self, notifier: SlackNotifier | SlackWebhookNotifier | ConsoleNotifier | JsonLinesNotifier
    ) -> None:
        self.notifier = notifier
        self.threads = not isinstance(notifier, SlackWebhookNotifier)

    def __repr__(self) -> str:
        return f"<MessageSink {self.notifier!r}>"

    def deliver(self, alert: Alert, *, thread_ts: str | None) -> str | None:
        if isinstance(self.notifier, SlackWebhookNotifier):
            return self.notifier.send(alert.message)
        return self.notifier.send(alert.message, thread_ts=thread_ts)

    def update(self, ts: str, message: SlackMessage) -> None:
        if isinstance(self.notifier, SlackNotifier):
            self.notifier.update(ts, message)


class WebhookSink:
    """Adapts ``WebhookNotifier`` to ``AlertSink``: the events go as the documented JSON."""

    threads = False

    def __init__(self, notifier: WebhookNotifier) -> None:
        self.notifier = notifier

    def __repr__(self) -> str:
        return f"<WebhookSink {self.notifier!r}>"

    def deliver(self, alert: Alert, *, thread_ts: str | None) -> str | None:
        self.notifier.deliver(
            WebhookBody.for_events(alert.events, text=alert.message.text, rule=alert.rule)
        )
        return None

    def update(self, ts: str, message: SlackMessage) -> None:
        return None


@dataclass(frozen=True, slots=True)
class SlackChannel:
    """A Slack channel, posted to with a bot token (``chat.postMessage``); threads replies.

    Args:
        channel: ``#name`` or a channel id.
        token: the bot token (default ``$SLACK_BOT_TOKEN`` in the worker). Without one the
            alerts go to the worker's console.
        max_per_minute: messages per minute to this channel before alerts are held back.
    """

    channel: str
    token: SecretStr | EnvVar = field(default_factory=lambda: EnvVar("SLACK_BOT_TOKEN"))
    max_per_minute: int | None = 20

    @property
    def name(self) -> str:
        return _checked(f"slack:{self.channel}")

    def create_sink(self, context: ResourceInitContext) -> AlertSink:
        return MessageSink(
            SlackResource(channel=self.channel, token=self.token).create_resource(context)
        )


@dataclass(frozen=True, slots=True)
class SlackIncomingWebhook:
    """A Slack incoming webhook (its channel is fixed by Slack; no threads).

    Args:
        url: the webhook URL, a secret (default ``$SLACK_WEBHOOK_URL`` in the worker).
        label: names the destination (the URL is never shown).
        max_per_minute: messages per minute before alerts are held back.
    """

    url: SecretStr | EnvVar = field(default_factory=lambda: EnvVar("SLACK_WEBHOOK_URL"))
    label: str = "default"
    max_per_minute: int | None = 20

    @property
    def name(self) -> str:
        return _checked(f"slack-webhook:{self.label}")

    def create_sink(self, context: ResourceInitContext) -> AlertSink:
        return MessageSink(SlackWebhookResource(url=self.url).create_resource(context))


@dataclass(frozen=True, slots=True)
class Webhook:
    """An HTTP endpoint that receives the events as signed JSON (Standard Webhooks).

    Args:
        url: the endpoint, or an ``EnvVar`` naming it.
        secret: the ``whsec_`` signing secret (``EnvVar`` recommended); ``None``: unsigned.
        headers: extra headers; values may be ``EnvVar`` (e.g. an ``Authorization``).
        label: names the destination (default: the URL's host).
        max_retries: retries on timeouts, 5xx and 429 within one delivery.
        max_per_minute: deliveries per minute before alerts are held back.
    """

    url: str | EnvVar
    secret: SecretStr | EnvVar | None = None
    headers: Mapping[str, str | EnvVar] = field(default_factory=dict)
    label: str | None = None
    max_retries: int = 3
    max_per_minute: int | None = None

    @property
    def name(self) -> str:
        if self.label is not None:
            return _checked(f"webhook:{self.label}")
        host = urlsplit(self.url).netloc if isinstance(self.url, str) else self.url.name
        return _checked(f"webhook:{host}")

    def create_sink(self, context: ResourceInitContext) -> AlertSink:
        settings = notifier_settings(context)
        return WebhookSink(
            WebhookNotifier(
                _secret(self.url, context),
                secret=None if self.secret is None else _secret(self.secret, context),
                headers={key: _secret(value, context) for key, value in self.headers.items()},
                timeout_s=settings.notifier_timeout_s,
                retry=WebhookRetryPolicy(max_retries=self.max_retries),
            )
        )


@dataclass(frozen=True, slots=True)
class Console:
    """The worker's standard output (the demo's default; threads shown indented)."""

    label: str = "console"
    max_per_minute: int | None = None

    @property
    def name(self) -> str:
        return _checked(f"console:{self.label}")

    def create_sink(self, context: ResourceInitContext) -> AlertSink:
        return MessageSink(ConsoleNotifier(label=self.label))


@dataclass(frozen=True, slots=True)
class JsonLinesFile:
    """A file with one JSON object per alert, for local use (``tail -f | jq``)."""

    path: str | Path
    max_per_minute: int | None = None

    @property
    def name(self) -> str:
        return _checked(f"file:{Path(self.path).name}")

    def create_sink(self, context: ResourceInitContext) -> AlertSink:
        return MessageSink(JsonLinesNotifier(self.path, label=self.name))


def _secret(value: Any, context: ResourceInitContext) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, EnvVar):
        return value.resolve(context.env)
    return str(value)
