"""Errors notifiers raise. Their part of the tree::

HookbusError (bus.errors)
├── ConfigError
│   └── NotifierConfigError   a notifier is misconfigured (raised at startup)
└── NotifierError
    ├── PermanentNotifierError   the destination refused for good (bad token, no channel):
    │                            do not retry, dead-letter with the reason
    └── TransientNotifierError   the destination is down or rate-limiting: retry later
"""

from __future__ import annotations

from bus.errors import ConfigError, HookbusError


class NotifierConfigError(ConfigError):
    """A notifier's settings are invalid."""


class NotifierError(HookbusError):
    """Sending a notification failed."""


class PermanentNotifierError(NotifierError):
    """The destination refused the message for a reason retrying cannot fix."""


class TransientNotifierError(NotifierError):
    """The destination is unavailable for now; a later retry may succeed."""
