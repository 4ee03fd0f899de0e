"""Posting to Slack through slack-sdk, both ways users connect, with its own retry handlers.

- ``SlackNotifier``: a bot token and ``chat.postMessage`` / ``chat.update`` through
  ``WebClient``; messages can be threaded (``thread_ts``) and updated.
- ``SlackWebhookNotifier``: an incoming-webhook URL through ``WebhookClient``; one channel,
  fixed by the webhook, and no threads (Slack returns no ``ts`` for webhook posts).

Both retry HTTP 429 (sleeping for its ``Retry-After``), 5xx and dropped connections with
slack-sdk's retry handlers, then raise ``TransientNotifierError``. Errors no retry can fix
(``invalid_auth``, ``channel_not_found``, ``not_in_channel`` …) raise
``PermanentNotifierError`` at once, without retrying.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from notifiers.errors import PermanentNotifierError, TransientNotifierError
from notifiers.format import SlackMessage
from notifiers.metrics import counted
from notifiers.settings import DEFAULT_SLACK_BASE_URL

# slack-sdk is imported where a client is built or its errors caught, not here: a worker
# that posts to no Slack destination then never loads it (about 2 MB of its idle RSS).
if TYPE_CHECKING:
    from slack_sdk import WebClient
    from slack_sdk.http_retry.handler import RetryHandler

logger = logging.getLogger(__name__)
#: slack-sdk's ``WebhookClient`` logs the full webhook URL (a secret) at DEBUG; it gets this
#: logger instead, which never emits DEBUG, so ``hookbus worker -v`` cannot leak it.
_webhook_sdk_logger = logging.getLogger(f"{__name__}.webhook_client")
_webhook_sdk_logger.setLevel(logging.INFO)

#: Slack error codes that no retry can fix, and what to do about each.
PERMANENT_SLACK_ERRORS: Final = {
    "invalid_auth": "Check the bot token (SLACK_BOT_TOKEN) in the worker's environment",
    "not_authed": "Set the bot token (SLACK_BOT_TOKEN) in the worker's environment",
    "account_inactive": "The token's user or app was deactivated; issue a new token",
    "token_revoked": "The token was revoked; issue a new token",
    "token_expired": "The token expired; refresh it",
    "channel_not_found": "Check the channel name or id, and that the bot can see it",
    "not_in_channel": "Invite the bot to the channel (/invite @your-bot)",
    "is_archived": "The channel is archived; choose another channel",
    "missing_scope": "Add the chat:write scope to the Slack app and reinstall it",
    "invalid_blocks": "The message's blocks were refused; report this as a hookbus bug",
    "msg_too_long": "The message was too long; report this as a hookbus bug",
    "cant_update_message": "The bot may only update its own messages",
    "message_not_found": "The message to update was deleted",
    # Incoming webhooks answer with these (HTTP 403/404/410).
    "invalid_token": "Check the incoming-webhook URL",
    "no_service": "The incoming webhook was removed; create a new one",
    "no_team": "The incoming webhook's workspace is gone; create a new one",
    "action_prohibited": "An admin restricted posting to this channel",
    "channel_is_archived": "The channel is archived; choose another channel",
}


def retry_handlers(max_retries: int, *, backoff_s: float = 0.5) -> list[RetryHandler]:
    """slack-sdk's handlers: 429 after ``Retry-After``; 5xx and dropped connections with
    exponential backoff and jitter starting at ``backoff_s`` seconds."""
    from slack_sdk.http_retry.builtin_handlers import (
        ConnectionErrorRetryHandler,
        RateLimitErrorRetryHandler,
        ServerErrorRetryHandler,
    )
    from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator

    backoff = BackoffRetryIntervalCalculator(backoff_factor=backoff_s)
    return [
        RateLimitErrorRetryHandler(max_retry_count=max_retries),
        ServerErrorRetryHandler(max_retry_count=max_retries, interval_calculator=backoff),
        ConnectionErrorRetryHandler(max_retry_count=max_retries, interval_calculator=backoff),
    ]


def build_web_client(
    token: str,
    *,
    base_url: str = DEFAULT_SLACK_BASE_URL,
    max_retries: int = 3,
    timeout_s: float = 10.0,
    backoff_s: float = 0.5,
) -> WebClient:
    """A ``WebClient`` that retries 429 (honouring ``Retry-After``), 5xx and dropped connections.

    Args:
        token: the bot token (kept inside the client; never logged).
        base_url: the Slack Web API URL (``HOOKBUS_SLACK_BASE_URL``).
        max_retries: retries per call for each kind of failure.
        timeout_s: timeout of one HTTP call, in seconds.
        backoff_s: the first backoff after a 5xx or dropped connection, in seconds.
    """
    from slack_sdk import WebClient

    return WebClient(
        token=token,
        base_url=base_url,
        timeout=int(max(1, timeout_s)),
        retry_handlers=retry_handlers(max_retries, backoff_s=backoff_s),
    )


def _permanent(target: str, code: str) -> PermanentNotifierError:
    return PermanentNotifierError(
        f"Slack destination {target!r} refused the message for good: got {code!r}. "
        f"{PERMANENT_SLACK_ERRORS[code]}.",
        destination=target,
    )


def _retry_after(headers: Mapping[str, Any] | None) -> float | None:
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return float(raw)
            except (TypeError, ValueError):
                return None
    return None


class SlackNotifier:
    """Posts (and updates) messages in Slack with a bot token.

    Args:
        client: a slack-sdk ``WebClient`` (see ``build_web_client``); it holds the token,
            so this object never does.
        channel: the default channel (``#data-alerts`` or an id); each call may override it.
    """

    def __init__(self, client: WebClient, *, channel: str) -> None:
        self._client = client
        self.channel = channel
        self.posted = 0

    def __repr__(self) -> str:
        return f"<SlackNotifier channel={self.channel!r} posted={self.posted}>"

    @counted("slack")
    def post(
        self,
        text: str,
        *,
        blocks: Sequence[dict[str, Any]] | None = None,
        channel: str | None = None,
        thread_ts: str | None = None,
    ) -> str | None:
        """Post a message; return its ``ts`` (the id replies thread under).

        ``text`` is sent as is: escape user text in it (``escape_mrkdwn``).

        Raises:
            PermanentNotifierError: Slack refused for good (bad token, unknown channel …).
            TransientNotifierError: Slack stayed unavailable after the retries.
        """
        target = channel or self.channel
        response = self._call(
            target,
            "chat.postMessage",
            channel=target,
            text=text,
            blocks=list(blocks) if blocks else None,
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
        )
        self.posted += 1
        ts = response.get("ts")
        logger.info("slack message posted channel=%s ts=%s thread_ts=%s", target, ts, thread_ts)
        return str(ts) if ts is not None else None

    def send(
        self, message: SlackMessage, *, channel: str | None = None, thread_ts: str | None = None
    ) -> str | None:
        """Post a formatted ``SlackMessage``; return its ``ts``."""
        return self.post(message.text, blocks=message.blocks, channel=channel, thread_ts=thread_ts)

    def update(self, ts: str, message: SlackMessage, *, channel: str | None = None) -> None:
        """Replace the message ``ts`` (e.g. the run's first alert, with its final state).

        Raises:
            PermanentNotifierError: Slack refused for good.
            TransientNotifierError: Slack stayed unavailable after the retries.
        """
        target = channel or self.channel
        self._call(
            target, "chat.update", channel=target, ts=ts, text=message.text, blocks=message.blocks
        )
        logger.info("slack message updated channel=%s ts=%s", target, ts)

    def _call(self, target: str, method: str, **body: Any) -> Any:
        from slack_sdk.errors import SlackApiError, SlackRequestError

        kwargs = {key: value for key, value in body.items() if value is not None}
        try:
            return self._client.api_call(method, json=kwargs)
        except SlackApiError as exc:
            code = str(exc.response.get("error", "unknown_error"))
            if code in PERMANENT_SLACK_ERRORS:
                raise _permanent(target, code) from exc
            raise TransientNotifierError(
                f"Slack destination {target!r} failed {method} after retries: got {code!r} "
                f"(HTTP {exc.response.status_code}). It is retried later.",
                destination=target,
                retry_after_s=_retry_after(exc.response.headers),
            ) from exc
        except (SlackRequestError, OSError) as exc:
            raise TransientNotifierError(
                f"Slack destination {target!r} unreachable for {method}: got "
                f"{type(exc).__name__}. It is retried later.",
                destination=target,
            ) from exc


class SlackWebhookNotifier:
    """Posts messages through a Slack incoming webhook (the channel is the webhook's).

    Args:
        url: the incoming-webhook URL (a secret: only its host is ever shown).
        max_retries: retries on 429, 5xx and dropped connections.
        timeout_s: timeout of one HTTP call, in seconds.
        backoff_s: the first backoff after a 5xx or dropped connection, in seconds.
    """

    def __init__(
        self, url: str, *, max_retries: int = 3, timeout_s: float = 10.0, backoff_s: float = 0.5
    ) -> None:
        from slack_sdk.webhook import WebhookClient

        self._client = WebhookClient(
            url,
            timeout=int(max(1, timeout_s)),
            retry_handlers=retry_handlers(max_retries, backoff_s=backoff_s),
            logger=_webhook_sdk_logger,
        )
        #: What logs and errors show: the host only, never the secret path.
        self.destination = f"slack-webhook:{urlsplit(url).netloc}"
        self.posted = 0

    def __repr__(self) -> str:
        return f"<SlackWebhookNotifier destination={self.destination!r} posted={self.posted}>"

    @counted("slack_webhook")
    def post(self, text: str, *, blocks: Sequence[dict[str, Any]] | None = None) -> str | None:
        """Post a message. Incoming webhooks return no ``ts``, so this returns ``None``.

        Raises:
            PermanentNotifierError: the webhook is gone or refused (a 4xx other than 429).
            TransientNotifierError: Slack stayed unavailable after the retries.
        """
        from slack_sdk.errors import SlackRequestError

        try:
            response = self._client.send(
                text=text, blocks=list(blocks) if blocks else None, unfurl_links=False
            )
        except (SlackRequestError, OSError) as exc:
            raise TransientNotifierError(
                f"Slack destination {self.destination!r} unreachable: got "
                f"{type(exc).__name__}. It is retried later.",
                destination=self.destination,
            ) from exc
        status = response.status_code
        if status >= 400:
            code = str(response.body or "").strip() or f"http_{status}"
            if status != 429 and status < 500:
                if code not in PERMANENT_SLACK_ERRORS:
                    code = "invalid_token" if status in (403, 404) else code
                hint = PERMANENT_SLACK_ERRORS.get(code, "Check the incoming-webhook URL")
                raise PermanentNotifierError(
                    f"Slack destination {self.destination!r} refused the message for good: "
                    f"got {code!r} (HTTP {status}). {hint}.",
                    destination=self.destination,
                )
            raise TransientNotifierError(
                f"Slack destination {self.destination!r} failed after retries: got {code!r} "
                f"(HTTP {status}). It is retried later.",
                destination=self.destination,
                retry_after_s=_retry_after(response.headers),
            )
        self.posted += 1
        logger.info("slack webhook message posted destination=%s", self.destination)
        return None

    def send(self, message: SlackMessage, *, thread_ts: str | None = None) -> str | None:
        """Post a formatted ``SlackMessage`` (``thread_ts`` is ignored: webhooks cannot thread)."""
        return self.post(message.text, blocks=message.blocks)
