"""A notifier that prints: the default when no Slack token is configured, and the demo's."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TextIO

from notifiers.format import SlackMessage
from notifiers.metrics import counted


class ConsoleNotifier:
    """Prints each message as a framed block on a stream (default: stdout).

    Args:
        label: shown in the frame's title, e.g. the Slack channel it stands in for.
        stream: where to write (default ``sys.stdout`` at the time of each post).
    """

    def __init__(self, *, label: str = "console", stream: TextIO | None = None) -> None:
        self.label = label
        self._stream = stream
        self.posted = 0

    def __repr__(self) -> str:
        return f"<ConsoleNotifier label={self.label!r} posted={self.posted}>"

    @counted("console")
    def post(
        self,
        text: str,
        *,
        blocks: Sequence[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
    ) -> str | None:
        """Print ``text``; blocks are ignored (the text is their plain-text fallback).

        A reply in a thread is indented under a ``↳`` so the console shows the threads.
        """
        stream = self._stream or sys.stdout
        rule = "─" * 60
        indent = "    ↳ " if thread_ts else ""
        title = f"{indent}┌─ alert → {self.label} "
        stream.write(f"{title}{rule[: max(0, 60 - len(title))]}\n")
        for line in text.splitlines() or [""]:
            stream.write(f"{' ' * len(indent)}│ {line}\n")
        stream.write(f"{' ' * len(indent)}└{rule}\n")
        stream.flush()
        self.posted += 1
        return f"console-{self.posted}"

    def send(self, message: SlackMessage, *, thread_ts: str | None = None) -> str | None:
        """Print a formatted ``SlackMessage``'s text."""
        return self.post(message.text, blocks=message.blocks, thread_ts=thread_ts)
