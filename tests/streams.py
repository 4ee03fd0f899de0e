"""Reading streams in tests, typed (redis-py's reply types are loose)."""

from __future__ import annotations

from typing import cast

import redis

from bus import CheckEvent, OpEvent, RunEvent, decode_event

Entry = tuple[bytes, dict[bytes, bytes]]


def read_stream(client: redis.Redis, key: str) -> list[Entry]:
    """Every entry of stream ``key``, oldest first."""
    return cast(list[Entry], client.xrange(key))


def read_events(client: redis.Redis, key: str) -> list[RunEvent | OpEvent]:
    """Every run and op event on stream ``key``, decoded, oldest first."""
    events = [decode_event(fields[b"event"]) for _, fields in read_stream(client, key)]
    return [event for event in events if not isinstance(event, CheckEvent)]


def read_check_events(client: redis.Redis, key: str) -> list[CheckEvent]:
    """Every check event on stream ``key``, decoded, oldest first."""
    events = [decode_event(fields[b"event"]) for _, fields in read_stream(client, key)]
    return [event for event in events if isinstance(event, CheckEvent)]
