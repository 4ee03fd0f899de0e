"""Reading streams in tests, typed (redis-py's reply types are loose)."""

from __future__ import annotations

from typing import cast

import redis

from bus import OpEvent, RunEvent, decode_event

Entry = tuple[bytes, dict[bytes, bytes]]


def read_stream(client: redis.Redis, key: str) -> list[Entry]:
    """Every entry of stream ``key``, oldest first."""
    return cast(list[Entry], client.xrange(key))


def read_events(client: redis.Redis, key: str) -> list[RunEvent | OpEvent]:
    """Every event on stream ``key``, decoded, oldest first."""
    return [decode_event(fields[b"event"]) for _, fields in read_stream(client, key)]
