"""Posting events to HTTP endpoints, signed per Standard Webhooks, with bounded retries.

The body is a documented, versioned JSON object (``WebhookBody``)::

    {"type": "hookbus.op.failed", "schema_version": 1, "timestamp": "2026-…Z",
     "data": {"rule": "oncall", "text": "Op 'load' in job 'etl' failed …", "count": 1,
              "events": [<the hookbus event, as on the bus>]}}

Headers (https://www.standardwebhooks.com): ``webhook-id`` is the event's id (a grouped
delivery: the first event's id plus ``.g<count>``), so receivers can dedupe a redelivery;
``webhook-timestamp`` is Unix seconds; ``webhook-signature`` is ``v1,<base64 HMAC-SHA256>``
of ``id.timestamp.body`` with the ``whsec_`` secret. Receivers check all three with
``verify``.

Retries: timeouts, connection errors, 5xx and 429 (after its ``Retry-After``) are retried
with exponential backoff and jitter (``WebhookRetryPolicy``); any other 4xx is the
receiver refusing for good and raises ``PermanentNotifierError`` at once.
"""

from __future__ import annotations

import base64
import logging
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bus.events import BusEvent, CheckEvent, Event
from notifiers.errors import (
    NotifierConfigError,
    PermanentNotifierError,
    TransientNotifierError,
    WebhookSignatureError,
)
from notifiers.metrics import counted

# httpx is imported where a client is built or its errors caught, not here: a worker that
# sends to no webhook then never loads it (about 4 MB of its idle RSS, httpx's CLI included).
if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

#: Version of ``WebhookBody``; bumped on any change a receiver could not read.
WEBHOOK_SCHEMA_VERSION: Final = 1
#: Signatures older or newer than this are refused by ``verify`` (replay protection).
DEFAULT_TOLERANCE_S: Final = 300
_SECRET_PREFIX: Final = "whsec_"


class WebhookData(BaseModel):
    """What happened: the rule that matched, a one-line summary, and the events."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str | None = None
    text: str
    #: How many events this delivery stands for (a grouped burst lists them all).
    count: int = Field(ge=1)
    events: tuple[Event, ...]


class WebhookBody(BaseModel):
    """The JSON body of every webhook hookbus sends (``schema_version`` 1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: ``hookbus.<run|op>.<state>`` (e.g. ``hookbus.run.failed``), ``hookbus.check.<kind>``
    #: (e.g. ``hookbus.check.run_stuck``), or ``hookbus.group`` for a grouped burst.
    type: str
    schema_version: Literal[1] = WEBHOOK_SCHEMA_VERSION
    timestamp: datetime
    data: WebhookData

    @classmethod
    def for_events(
        cls, events: tuple[BusEvent, ...], *, text: str, rule: str | None = None
    ) -> WebhookBody:
        """The body for one event, or for a grouped burst of several."""
        first = events[0]
        what = first.kind if isinstance(first, CheckEvent) else first.to_state
        kind = f"hookbus.{first.type}.{what}" if len(events) == 1 else "hookbus.group"
        return cls(
            type=kind,
            timestamp=first.occurred_at,
            data=WebhookData(rule=rule, text=text, count=len(events), events=events),
        )

    def message_id(self) -> str:
        """The ``webhook-id``: the event's id, so a redelivered event keeps its id."""
        first = self.data.events[0].event_id
        return first if self.data.count == 1 else f"{first}.g{self.data.count}"


def generate_webhook_secret() -> str:
    """A fresh ``whsec_`` secret (24 random bytes, base64) to share with a receiver."""
    return _SECRET_PREFIX + base64.b64encode(os.urandom(24)).decode()


def _signer(secret: str, *, name: str) -> Webhook:
    if not secret.startswith(_SECRET_PREFIX):
        raise NotifierConfigError(
            f"webhook secret for {name!r} is not a Standard Webhooks secret: got a value "
            f"starting {secret[:3]!r}. Use 'whsec_' followed by base64 "
            "(notifiers.generate_webhook_secret() makes one)."
        )
    try:
        return Webhook(secret)
    except Exception as exc:  # binascii.Error, EmptyWebhookSecretError
        raise NotifierConfigError(
            f"webhook secret for {name!r} is not valid base64 after 'whsec_': got "
            f"{type(exc).__name__}. Use notifiers.generate_webhook_secret() to make one."
        ) from exc


def sign(secret: str, *, message_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``.

    Raises:
        NotifierConfigError: ``secret`` is not ``whsec_`` + base64.
    """
    signature = _signer(secret, name=message_id).sign(message_id, timestamp, body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }


def verify(body: bytes | str, headers: Mapping[str, str], *, secret: str) -> WebhookBody:
    """Check a received webhook's signature and timestamp, and parse its body.

    For receivers: ``verify(request.body, request.headers, secret=...)``.

    Raises:
        WebhookSignatureError: headers missing, timestamp outside 5 minutes, or no
            matching signature.
        NotifierConfigError: ``secret`` is not ``whsec_`` + base64.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    message_id = lowered.get("webhook-id", "")
    try:
        _signer(secret, name="receiver").verify(body, lowered, json_parse=False)
    except WebhookVerificationError as exc:
        raise WebhookSignatureError(
            f"webhook {message_id!r} failed verification: got {exc}. Check that the sender "
            "and the receiver share the same whsec_ secret and that clocks are in sync."
        ) from exc
    return WebhookBody.model_validate_json(body)


@dataclass(frozen=True, slots=True)
class WebhookRetryPolicy:
    """Exponential backoff with full jitter; the caller sleeps.

    Args:
        max_retries: retries after the first attempt (0: no retry).
        base_s: the first backoff, in seconds; doubled per retry.
        cap_s: no backoff (or honoured ``Retry-After``) is longer, in seconds.
    """

    max_retries: int = 3
    base_s: float = 0.5
    cap_s: float = 30.0

    def delay_s(self, retry: int, *, retry_after_s: float | None = None) -> float | None:
        """Seconds to wait before retry number ``retry`` (from 1), or ``None`` to give up."""
        if retry > self.max_retries:
            return None
        if retry_after_s is not None:
            return min(self.cap_s, max(0.0, retry_after_s))
        return random.uniform(0, min(self.cap_s, self.base_s * 2 ** (retry - 1)))


def _retry_after_s(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


class WebhookNotifier:
    """POSTs ``WebhookBody`` JSON to one URL, signed, with retries.

    Args:
        url: the endpoint (only its scheme and host are ever logged).
        secret: the ``whsec_`` signing secret; ``None`` sends unsigned (not recommended).
        headers: extra headers (e.g. an ``Authorization`` the receiver wants).
        timeout_s: timeout of one attempt, in seconds.
        retry: the retry policy.
        transport: an httpx transport (tests); default: a real connection.
        sleep: how to wait between attempts (default ``time.sleep``).
    """

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
        retry: WebhookRetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(url)
        self.destination = f"webhook:{parts.scheme}://{parts.netloc}"
        if secret is not None:
            _signer(secret, name=self.destination)
        self._url = url
        self._secret = secret
        self._headers = dict(headers or {})
        self._retry = retry or WebhookRetryPolicy()
        import httpx

        self._client = httpx.Client(timeout=timeout_s, transport=transport)
        self._sleep = sleep
        self.posted = 0

    def __repr__(self) -> str:
        return f"<WebhookNotifier destination={self.destination!r} posted={self.posted}>"

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    @counted("webhook")
    def deliver(self, body: WebhookBody) -> None:
        """POST ``body`` until it is accepted (2xx) or the retries run out.

        Raises:
            PermanentNotifierError: the receiver answered a 4xx other than 429.
            TransientNotifierError: timeouts, connection errors, 5xx or 429 outlasted the
                retries.
        """
        payload = body.model_dump_json()
        retry = 0
        while True:
            outcome, retry_after = self._attempt(body.message_id(), payload)
            if outcome is None:
                self.posted += 1
                logger.info(
                    "webhook delivered destination=%s webhook_id=%s attempts=%d",
                    self.destination,
                    body.message_id(),
                    retry + 1,
                )
                return
            retry += 1
            delay = self._retry.delay_s(retry, retry_after_s=retry_after)
            if delay is None:
                raise TransientNotifierError(
                    f"webhook {self.destination!r} failed {retry} time(s): got {outcome}. "
                    "It is retried later; check that the receiver is up.",
                    destination=self.destination,
                    retry_after_s=retry_after,
                )
            logger.warning(
                "webhook retry destination=%s webhook_id=%s attempt=%d outcome=%s delay_s=%.2f",
                self.destination,
                body.message_id(),
                retry,
                outcome,
                delay,
            )
            self._sleep(delay)

    def _attempt(self, message_id: str, payload: str) -> tuple[str | None, float | None]:
        """One POST: ``(None, None)`` on success, else (what went wrong, Retry-After)."""
        now = datetime.now(UTC)
        headers = {
            **self._headers,
            "content-type": "application/json",
            # Sent unsigned too: the id is what lets a receiver drop a redelivery.
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
        }
        if self._secret is not None:
            headers.update(sign(self._secret, message_id=message_id, timestamp=now, body=payload))
        import httpx

        try:
            response = self._client.post(self._url, content=payload.encode(), headers=headers)
        except httpx.TransportError as exc:  # timeouts, refused and dropped connections
            return type(exc).__name__, None
        status = response.status_code
        if status < 400:
            return None, None
        if status == 429 or status >= 500:
            return f"HTTP {status}", _retry_after_s(response)
        raise PermanentNotifierError(
            f"webhook {self.destination!r} refused event {message_id!r}: got HTTP {status} "
            f"{response.text[:200]!r}. Fix the receiver or the destination's URL and headers; "
            "it is not retried.",
            destination=self.destination,
        )
