"""Inspecting and repairing the dead-letter streams (``hookbus dlq ...``).

Replaying a dead letter re-publishes the original event on its source stream. That is
safe because of the ledger: handlers that already succeeded for that event id are
skipped, so only the handler that failed (or every handler, for an entry that never
decoded) runs again.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

import redis
from pydantic import BaseModel, ConfigDict

from bus.errors import BusError
from bus.keys import Keys
from bus.runs import EVENT_FIELD
from bus.utils import entry_order


class DeadLetter(BaseModel):
    """One dead-letter entry, as the operator sees it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    stream: str
    source_stream: str
    source_id: str
    reason: str
    error: str
    handler: str
    event_id: str
    attempts: int
    failed_at: datetime | None
    payload: str


class DeadLetterNotFoundError(BusError):
    """No dead letter has the given id."""


def list_dead_letters(client: redis.Redis, keys: Keys, *, limit: int = 100) -> list[DeadLetter]:
    """The newest ``limit`` dead letters of every shard, newest first."""
    letters: list[DeadLetter] = []
    for shard in range(keys.shards):
        stream = keys.dead_letter_stream(shard)
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]], client.xrevrange(stream, count=limit)
        )
        letters.extend(_letter(stream, entry_id, fields) for entry_id, fields in entries)
    letters.sort(key=lambda letter: entry_order(letter.id), reverse=True)
    return letters[:limit]


def count_dead_letters(client: redis.Redis, keys: Keys) -> int:
    """How many dead letters all shards hold."""
    return sum(int(client.xlen(keys.dead_letter_stream(shard))) for shard in range(keys.shards))


def get_dead_letter(client: redis.Redis, keys: Keys, letter_id: str) -> DeadLetter:
    """The dead letter with stream id ``letter_id``.

    Raises:
        DeadLetterNotFoundError: no shard has it.
    """
    for shard in range(keys.shards):
        stream = keys.dead_letter_stream(shard)
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]], client.xrange(stream, letter_id, letter_id)
        )
        if entries:
            return _letter(stream, *entries[0])
    raise DeadLetterNotFoundError(
        f"dead letter {letter_id!r} does not exist. List them with: hookbus dlq list"
    )


def replay_dead_letter(client: redis.Redis, keys: Keys, letter_id: str) -> str:
    """Re-publish the dead letter's event on its source stream and remove the letter.

    Returns:
        the new stream entry id.

    Raises:
        DeadLetterNotFoundError: no shard has it.
        BusError: the letter has no payload to replay.
    """
    letter = get_dead_letter(client, keys, letter_id)
    if not letter.payload:
        raise BusError(
            f"dead letter {letter_id!r} has no payload to replay (reason {letter.reason!r}). "
            "Purge it with: hookbus dlq purge " + letter_id
        )
    pipe = client.pipeline(transaction=False)
    pipe.xadd(letter.source_stream, {EVENT_FIELD: letter.payload.encode()})
    pipe.xdel(letter.stream, letter_id)
    new_id, _ = pipe.execute()
    return str(new_id.decode() if isinstance(new_id, bytes) else new_id)


def purge_dead_letters(client: redis.Redis, keys: Keys, letter_ids: list[str] | None) -> int:
    """Delete the given dead letters (``None``: all of them); return how many went."""
    if letter_ids is None:
        streams = [keys.dead_letter_stream(shard) for shard in range(keys.shards)]
        removed = count_dead_letters(client, keys)
        client.delete(*streams)
        return removed
    return sum(
        int(client.xdel(get_dead_letter(client, keys, letter_id).stream, letter_id))
        for letter_id in letter_ids
    )


def _letter(stream: str, entry_id: bytes, fields: dict[bytes, bytes]) -> DeadLetter:
    def text(name: str) -> str:
        return fields.get(name.encode(), b"").decode(errors="replace")

    failed_at = text("failed_at")
    return DeadLetter(
        id=entry_id.decode(),
        stream=stream,
        source_stream=text("source_stream"),
        source_id=text("source_id"),
        reason=text("reason"),
        error=text("error"),
        handler=text("handler"),
        event_id=text("event_id"),
        attempts=int(text("attempts") or 0),
        failed_at=datetime.fromisoformat(failed_at) if failed_at else None,
        payload=text("payload"),
    )
