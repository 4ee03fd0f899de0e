"""How notifier sends went, as a Prometheus counter every notifier shares.

``@counted("slack")`` on a notifier's ``post`` counts each call by outcome: ``sent``,
``permanent_error`` (refused for good) or ``transient_error`` (down, rate-limited).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Final, ParamSpec, TypeVar

from prometheus_client import Counter

from notifiers.errors import PermanentNotifierError, TransientNotifierError

NOTIFIER_SENDS: Final = Counter(
    "hookbus_notifier_sends",
    "Notifications sent, by notifier and outcome (sent, permanent_error, transient_error).",
    ["notifier", "outcome"],
)

P = ParamSpec("P")
R = TypeVar("R")


def counted(notifier: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Count the decorated send method's outcomes under ``notifier``."""

    def decorate(send: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(send)
        def counted_send(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                result = send(*args, **kwargs)
            except PermanentNotifierError:
                NOTIFIER_SENDS.labels(notifier, "permanent_error").inc()
                raise
            except TransientNotifierError:
                NOTIFIER_SENDS.labels(notifier, "transient_error").inc()
                raise
            NOTIFIER_SENDS.labels(notifier, "sent").inc()
            return result

        return counted_send

    return decorate
