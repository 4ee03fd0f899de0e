"""Posting to Slack through slack-sdk's ``WebClient``, with its own retry handlers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from notifiers.errors import PermanentNotifierError, TransientNotifierError

logger = logging.getLogger(__name__)

#: The public Slack Web API; a setting can point at GovSlack, a proxy or a test stand-in.
DEFAULT_SLACK_BASE_URL: Final = "https://slack.com/api/"
#: Slack error codes that no retry can fix: fail fast, dead-letter with the reason.
PERMANENT_SLACK_ERRORS: Final = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "missing_scope",
        "invalid_blocks",
        "msg_too_long",
    }
)


def build_web_client(
    token: str, *, base_url: str = DEFAULT_SLACK_BASE_URL, max_retries: int = 2
) -> WebClient:
    """A ``WebClient`` that retries 429 (honouring ``Retry-After``), 5xx and dropped connections."""
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=10,
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=max_retries),
            ServerErrorRetryHandler(max_retry_count=max_retries),
            ConnectionErrorRetryHandler(max_retry_count=max_retries),
        ],
    )


class SlackNotifier:
    """Posts messages to one channel with ``chat.postMessage``.

    Args:
        client: a slack-sdk ``WebClient`` (see ``build_web_client``); it holds the token,
            so this object never does.
        channel: the default channel (``#data-alerts`` or an id).
    """

    def __init__(self, client: WebClient, *, channel: str) -> None:
        self._client = client
        self.channel = channel
        self.posted = 0

    def __repr__(self) -> str:
        return f"<SlackNotifier channel={self.channel!r} posted={self.posted}>"

    def post(
        self,
        text: str,
        *,
        blocks: Sequence[dict[str, Any]] | None = None,
        channel: str | None = None,
        thread_ts: str | None = None,
    ) -> str | None:
        """Post a message; return its ``ts`` (the id replies thread under).

        Raises:
            PermanentNotifierError: Slack refused for good (bad token, unknown channel …).
            TransientNotifierError: Slack stayed unavailable after the retries.
        """
        target = channel or self.channel
        try:
            response = self._client.chat_postMessage(
                channel=target, text=text, blocks=blocks, thread_ts=thread_ts
            )
        except SlackApiError as exc:
            code = str(exc.response.get("error", "unknown_error"))
            if code in PERMANENT_SLACK_ERRORS:
                raise PermanentNotifierError(
                    f"Slack refused the message to {target!r}: {code}. Check the bot token "
                    "and that the bot is invited to the channel."
                ) from exc
            raise TransientNotifierError(f"Slack API error posting to {target!r}: {code}") from exc
        except (SlackRequestError, OSError) as exc:
            raise TransientNotifierError(
                f"Slack unreachable posting to {target!r}: {type(exc).__name__}"
            ) from exc
        self.posted += 1
        ts = response.get("ts")
        logger.info("slack message posted channel=%s ts=%s", target, ts)
        return str(ts) if ts is not None else None
