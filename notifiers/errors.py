"""Errors notifiers raise. Their part of the tree::

HookbusError (bus.errors)
├── ConfigError
│   └── NotifierConfigError   a notifier is misconfigured (raised at startup)
└── NotifierError
    ├── PermanentNotifierError   the destination refused for good (bad token, no channel,
    │                            a 4xx from a webhook): ``retryable = False``, so the worker
    │                            dead-letters it at once with the reason
    ├── TransientNotifierError   the destination is down or rate-limiting after our own
    │                            HTTP retries: ``retryable = True``, a later redelivery
    │                            may succeed (``retry_after_s`` hints when)
    ├── WebhookSignatureError    (receivers) a webhook's signature or timestamp is wrong
    └── SilenceNotFoundError     ``hookbus silences remove`` named no existing silence

A dispatcher that wraps user code decides on redelivery by ``getattr(cause, "retryable",
True)``: the attribute, not the class, is the contract, so other packages need not import
these classes to respect it.
"""

from __future__ import annotations

from typing import ClassVar

from bus.errors import ConfigError, HookbusError


class NotifierConfigError(ConfigError):
    """A notifier's settings are invalid."""


class NotifierError(HookbusError):
    """Sending a notification failed.

    Attributes:
        retryable: whether trying the same send again later can succeed.
        destination: what was being sent to (a channel, a URL without its query).
    """

    retryable: ClassVar[bool] = True

    def __init__(self, message: str, *, destination: str = "") -> None:
        super().__init__(message)
        self.destination = destination


class PermanentNotifierError(NotifierError):
    """The destination refused the message for a reason retrying cannot fix."""

    retryable: ClassVar[bool] = False


class TransientNotifierError(NotifierError):
    """The destination is unavailable for now; a later retry may succeed.

    Attributes:
        retry_after_s: how long the destination asked us to wait (``Retry-After``), if it
            said so; ``None`` otherwise.
    """

    retryable: ClassVar[bool] = True

    def __init__(
        self, message: str, *, destination: str = "", retry_after_s: float | None = None
    ) -> None:
        super().__init__(message, destination=destination)
        self.retry_after_s = retry_after_s


class WebhookSignatureError(NotifierError):
    """A received webhook is not signed by the expected secret, or is too old or new."""

    retryable: ClassVar[bool] = False


class SilenceNotFoundError(NotifierError):
    """No silence has the given id."""

    retryable: ClassVar[bool] = False
