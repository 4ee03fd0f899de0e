"""A notifier that appends one JSON object per alert to a file: for local use and audits.

Each line is ``{"sent_at": ..., "destination": ..., "text": ..., "blocks": [...],
"thread_ts": ...}``, so ``tail -f alerts.jsonl | jq .text`` follows the alerts. Each line is
written with one unbuffered ``write(2)`` on a file opened with ``O_APPEND``, so several
worker processes on one machine can share a local file without interleaving lines.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from notifiers.errors import TransientNotifierError
from notifiers.format import SlackMessage
from notifiers.metrics import counted

logger = logging.getLogger(__name__)


class JsonLinesNotifier:
    """Appends each message as a JSON line to ``path`` (parent directories are created).

    Args:
        path: the file to append to.
        label: the ``destination`` recorded in each line (default: the file name).
    """

    def __init__(self, path: str | Path, *, label: str | None = None) -> None:
        self.path = Path(path)
        self.label = label or self.path.name
        self.posted = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<JsonLinesNotifier path={str(self.path)!r} posted={self.posted}>"

    @counted("jsonl")
    def post(
        self,
        text: str,
        *,
        blocks: Sequence[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
    ) -> str | None:
        """Append one line; return its line number as the message id.

        Raises:
            TransientNotifierError: the file cannot be written (disk full, permissions).
        """
        record = {
            "sent_at": datetime.now(UTC).isoformat(),
            "destination": self.label,
            "text": text,
            "blocks": list(blocks or ()),
            "thread_ts": thread_ts,
        }
        line = json.dumps(record, ensure_ascii=False) + "\n"
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Unbuffered: the whole line is one write(2) on an O_APPEND file.
                with self.path.open("ab", buffering=0) as handle:
                    handle.write(line.encode())
                self.posted += 1
                number = self.posted
        except OSError as exc:
            raise TransientNotifierError(
                f"alert file {str(self.path)!r} cannot be written: got {exc!r}. Check the "
                "path, its permissions and free space.",
                destination=str(self.path),
            ) from exc
        logger.debug("alert appended path=%s", self.path)
        return str(number)

    def send(self, message: SlackMessage, *, thread_ts: str | None = None) -> str | None:
        """Append a formatted ``SlackMessage``."""
        return self.post(message.text, blocks=message.blocks, thread_ts=thread_ts)

    @staticmethod
    def read(path: str | Path) -> list[dict[str, Any]]:
        """Every record in ``path``, oldest first (for tests and tools)."""
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
