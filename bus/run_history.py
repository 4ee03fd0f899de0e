"""Finding one run's events on its shard stream, for ``hookbus runs show``.

Streams hold every run's events interleaved, so this walks its shard backwards in
batches until it has reached the run's first event (``seq`` 1) or scanned
``max_entries`` — an operator tool, not a hot path.
"""

from __future__ import annotations

from typing import cast

import redis

from bus.errors import BusError, EventValidationError
from bus.events import CheckEvent, OpEvent, RunEvent, decode_event
from bus.keys import Keys
from bus.runs import EVENT_FIELD

#: Entries read per XREVRANGE.
BATCH: int = 1_000
#: Run ids are 32 hex characters; a shorter id is a prefix.
FULL_ID_CHARS: int = 32


def run_events(
    client: redis.Redis, keys: Keys, run_id: str, *, max_entries: int = 200_000
) -> list[RunEvent | OpEvent]:
    """The events of the run whose id is (or starts with) ``run_id``, in ``seq`` order.

    A short id, as ``hookbus events tail`` prints it, is looked for on every shard.

    Raises:
        BusError: the prefix matches several runs.
    """
    streams = (
        [keys.stream_for_run(run_id)] if len(run_id) >= FULL_ID_CHARS else keys.all_event_streams()
    )
    found = [
        event
        for stream in streams
        for event in _scan(client, stream, run_id, max_entries=max_entries)
    ]
    matching = sorted({event.run_id for event in found})
    if len(matching) > 1:
        raise BusError(
            f"run id prefix {run_id!r} matches {len(matching)} runs: got {matching[:5]}. "
            "Give more characters of the id."
        )
    return sorted(found, key=lambda event: event.seq)


def _scan(
    client: redis.Redis, stream: str, run_id: str, *, max_entries: int
) -> list[RunEvent | OpEvent]:
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
            if event is not None and event.run_id.startswith(run_id):
                found.append(event)
        if any(event.seq == 1 for event in found):
            break
        upper = "(" + entries[-1][0].decode()
    return found


def _decode(raw: bytes) -> RunEvent | OpEvent | None:
    try:
        event = decode_event(raw)
    except EventValidationError:
        return None
    # A check event about the run is not one of its transitions (it has no ``seq``).
    return None if isinstance(event, CheckEvent) else event
