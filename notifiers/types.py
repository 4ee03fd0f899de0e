"""The one interface every notifier offers to hooks and sensors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Notifier(Protocol):
    """Something that can post a message: Slack, a webhook, the console."""

    def post(self, text: str, *, blocks: Sequence[dict[str, Any]] | None = None) -> str | None:
        """Send ``text`` (and Block Kit ``blocks`` where supported); return a message id."""
        ...
