"""Finding one run's events on its shard stream, for ``hookbus runs show``.

Streams hold every run's events interleaved, so this walks its shard backwards in
batches until it has reached the run's first event (``seq`` 1) or scanned
``max_entries`` — an operator tool, not a hot path.
"""

from __future__ import annotations

from typing import cast

import redis

from bus.errors import EventValidationError
from bus.events import OpEvent, RunEvent, decode_event
from bus.keys import Keys
from bus.publisher import EVENT_FIELD

#: Entries read per XREVRANGE.
BATCH: int = 1_000


def run_events(
    client: redis.Redis, keys: Keys, run_id: str, *, max_entries: int = 200_000
) -> list[RunEvent | OpEvent]:
    """The events of ``run_id`` still on its stream, in ``seq`` order."""
    stream = keys.stream_for_run(run_id)
    found: list[RunEvent | OpEvent] = []
    upper, scanned = "+", 0
    while scanned < max_entries:
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]],
            client.xrevrange(stream, max=upper, min="-", count=BATCH),
        )
        if not entries:
            break
        scanned += len(entries)
        for _, fields in entries:
            event = _decode(fields.get(EVENT_FIELD, b""))
            if event is not None and event.run_id == run_id:
                found.append(event)
        if any(event.seq == 1 for event in found):
            break
        upper = "(" + entries[-1][0].decode()
    return sorted(found, key=lambda event: event.seq)


def _decode(raw: bytes) -> RunEvent | OpEvent | None:
    try:
        return decode_event(raw)
    except EventValidationError:
        return None
