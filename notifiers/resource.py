"""``SlackResource``: the Slack notifier as a resource for hooks (``context.resources.slack``).

The token is an ``EnvVar`` resolved in the process that builds the resource (the worker),
never captured at definition time. The Slack API base URL and retry count come from the
worker's settings (``HOOKBUS_SLACK_BASE_URL``, ``HOOKBUS_SLACK_MAX_RETRIES``). Without a
token the resource falls back to the console, so a code location works on a laptop with
no Slack at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pydantic import SecretStr

from bus.envvar import EnvVar
from bus.types import ResourceInitContext
from notifiers.console import ConsoleNotifier
from notifiers.settings import NotifierSettings
from notifiers.slack import SlackNotifier, SlackWebhookNotifier, build_web_client

logger = logging.getLogger(__name__)


def notifier_settings(context: ResourceInitContext) -> NotifierSettings:
    """The notifier settings of the process building a resource (defaults outside one)."""
    if isinstance(context.settings, NotifierSettings):
        return context.settings
    # Outside a worker (a unit test building a resource by hand): the documented defaults,
    # never the environment, which only a process's settings class reads.
    return NotifierSettings.model_construct()


@dataclass(frozen=True, slots=True)
class SlackResource:
    """Builds a ``SlackNotifier`` (or a ``ConsoleNotifier`` when no token is set).

    Args:
        channel: the channel to post to (default: ``$SLACK_CHANNEL``, else ``#alerts``).
        token: the bot token (default: ``$SLACK_BOT_TOKEN``).
        base_url: the Slack Web API URL (default: the ``HOOKBUS_SLACK_BASE_URL`` setting).
    """

    channel: str | EnvVar = field(default_factory=lambda: EnvVar("SLACK_CHANNEL", "#alerts"))
    token: SecretStr | EnvVar = field(default_factory=lambda: EnvVar("SLACK_BOT_TOKEN"))
    base_url: str | None = None

    def create_resource(self, context: ResourceInitContext) -> SlackNotifier | ConsoleNotifier:
        """The notifier for this process: Slack when a token resolves, else the console."""
        channel = _resolve(self.channel, context) or "#alerts"
        token = (
            self.token.get_secret_value()
            if isinstance(self.token, SecretStr)
            else self.token.resolve_optional(context.env)
        )
        if not token:
            logger.info("no Slack token configured; alerts for %s go to the console", channel)
            return ConsoleNotifier(label=f"Slack {channel} (no SLACK_BOT_TOKEN: console)")
        settings = notifier_settings(context)
        client = build_web_client(
            token,
            base_url=self.base_url or settings.slack_base_url,
            max_retries=settings.slack_max_retries,
            timeout_s=settings.notifier_timeout_s,
        )
        return SlackNotifier(client, channel=channel)


@dataclass(frozen=True, slots=True)
class SlackWebhookResource:
    """Builds a ``SlackWebhookNotifier`` for an incoming-webhook URL (a secret).

    Args:
        url: the webhook URL (default: ``$SLACK_WEBHOOK_URL``).
    """

    url: SecretStr | EnvVar = field(default_factory=lambda: EnvVar("SLACK_WEBHOOK_URL"))

    def create_resource(self, context: ResourceInitContext) -> SlackWebhookNotifier:
        """The notifier for this process."""
        url = (
            self.url.get_secret_value()
            if isinstance(self.url, SecretStr)
            else self.url.resolve(context.env)
        )
        settings = notifier_settings(context)
        return SlackWebhookNotifier(
            url, max_retries=settings.slack_max_retries, timeout_s=settings.notifier_timeout_s
        )


def _resolve(value: str | EnvVar, context: ResourceInitContext) -> str | None:
    return value.resolve_optional(context.env) if isinstance(value, EnvVar) else value
