"""Small pure helpers for what Redis hands back (bytes, stream ids)."""

from __future__ import annotations


def text(value: object) -> str:
    """A Redis reply value as ``str`` (redis-py returns bytes without decode_responses)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def entry_order(entry_id: object) -> tuple[int, int]:
    """A stream entry id (``"<ms>-<seq>"``) as a sortable pair."""
    millis, _, sequence = text(entry_id).partition("-")
    return int(millis), int(sequence or 0)
