"""``SlackResource``: the Slack notifier as a resource for hooks (``context.resources.slack``).

The token is an ``EnvVar`` resolved in the process that builds the resource (the worker),
never captured at definition time. Without a token the resource falls back to the console,
so a code location works on a laptop with no Slack at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pydantic import SecretStr

from bus.envvar import EnvVar
from bus.types import ResourceInitContext
from notifiers.console import ConsoleNotifier
from notifiers.slack import DEFAULT_SLACK_BASE_URL, SlackNotifier, build_web_client

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SlackResource:
    """Builds a ``SlackNotifier`` (or a ``ConsoleNotifier`` when no token is set).

    Args:
        channel: the channel to post to (default: ``$SLACK_CHANNEL``, else ``#alerts``).
        token: the bot token (default: ``$SLACK_BOT_TOKEN``).
        base_url: the Slack Web API URL (default: ``$HOOKBUS_SLACK_BASE_URL`` or Slack's).
    """

    channel: str | EnvVar = field(default_factory=lambda: EnvVar("SLACK_CHANNEL", "#alerts"))
    token: SecretStr | EnvVar = field(default_factory=lambda: EnvVar("SLACK_BOT_TOKEN"))
    base_url: str | EnvVar = field(
        default_factory=lambda: EnvVar("HOOKBUS_SLACK_BASE_URL", DEFAULT_SLACK_BASE_URL)
    )

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
        base_url = _resolve(self.base_url, context) or DEFAULT_SLACK_BASE_URL
        return SlackNotifier(build_web_client(token, base_url=base_url), channel=channel)


def _resolve(value: str | EnvVar, context: ResourceInitContext) -> str | None:
    return value.resolve_optional(context.env) if isinstance(value, EnvVar) else value
