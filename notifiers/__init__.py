"""Where alerts go: Slack, the console; and how they read.

A hook or sensor in a worker calls ``Notifier.post``; ``SlackResource`` makes one
available as ``context.resources.slack``.
"""

from notifiers.console import ConsoleNotifier
from notifiers.errors import (
    NotifierConfigError,
    NotifierError,
    PermanentNotifierError,
    TransientNotifierError,
)
from notifiers.format import escape_mrkdwn, failure_text
from notifiers.resource import SlackResource
from notifiers.slack import SlackNotifier, build_web_client
from notifiers.types import Notifier

__all__ = [
    "ConsoleNotifier",
    "Notifier",
    "NotifierConfigError",
    "NotifierError",
    "PermanentNotifierError",
    "SlackNotifier",
    "SlackResource",
    "TransientNotifierError",
    "build_web_client",
    "escape_mrkdwn",
    "failure_text",
]
