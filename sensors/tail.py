"""``hookbus events tail``: the events on the bus as readable, coloured lines."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import redis
from rich.text import Text

from bus.errors import EventValidationError
from bus.events import BusEvent, CheckEvent, OpEvent, decode_event
from bus.keys import Keys
from bus.runs import EVENT_FIELD
from bus.utils import entry_order

_STATE_STYLES = {
    "failed": "bold red",
    "crashed": "bold magenta",
    "cancelled": "yellow",
    "cancelling": "yellow",
    "retrying": "yellow",
    "completed": "green",
    "running": "cyan",
    "check": "bold yellow",
}
_Entries = list[tuple[bytes, dict[bytes, bytes]]]


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events to show; ``None`` fields match everything."""

    job: str | None = None
    run: str | None = None
    state: str | None = None

    def matches(self, event: BusEvent) -> bool:
        """``state`` ``"check"`` matches check events (which have no state of their own)."""
        state = "check" if isinstance(event, CheckEvent) else event.to_state
        return (
            (self.job is None or event.job_name == self.job)
            and (self.run is None or (event.run_id or "").startswith(self.run))
            and (self.state is None or state == self.state)
        )


def recent_events(
    client: redis.Redis, keys: Keys, *, count: int
) -> tuple[list[BusEvent], dict[str, str]]:
    """The last ``count`` events of every shard, oldest first, and each shard's last id."""
    merged: list[tuple[tuple[int, int], BusEvent]] = []
    last_ids: dict[str, str] = {}
    for stream in keys.all_event_streams():
        entries = cast(_Entries, client.xrevrange(stream, count=count))
        last_ids[stream] = entries[0][0].decode() if entries else "0-0"
        merged.extend((entry_order(entry_id), event) for entry_id, event in _decoded(entries))
    merged.sort(key=lambda pair: pair[0])
    return [event for _, event in merged[-count:]], last_ids


def follow_events(
    client: redis.Redis, last_ids: dict[str, str], *, block_ms: int = 1_000
) -> Iterator[BusEvent]:
    """New events as they arrive on any shard (runs until interrupted)."""
    positions = dict(last_ids)
    while True:
        reply = cast(
            list[tuple[bytes, _Entries]] | None,
            client.xread(positions, block=block_ms),  # type: ignore[arg-type]
        )
        for stream, entries in reply or []:
            positions[stream.decode()] = entries[-1][0].decode()
            for _, event in _decoded(entries):
                yield event


def format_event(event: BusEvent) -> Text:
    """One line: time, run, job, what changed, and the error if any (for a check event:
    which check fired, and what it saw)."""
    line = Text()
    line.append(event.occurred_at.strftime("%H:%M:%S.%f")[:-3], style="dim")
    line.append(f"  {(event.run_id or '-' * 8)[:8]}  ", style="dim")
    line.append(event.job_name, style="bold")
    if isinstance(event, CheckEvent):
        line.append(
            f"  check {event.check_name} ({event.kind}) fired", style=_STATE_STYLES["check"]
        )
        line.append(f"  {event.message}")
        return line
    if isinstance(event, OpEvent):
        line.append(f".{event.op.step_key}")
        if event.op.attempt > 1:
            line.append(f" (attempt {event.op.attempt})", style="dim")
    line.append(f"  {event.from_state or '∅'} → ")
    line.append(str(event.to_state), style=_STATE_STYLES.get(event.to_state, ""))
    if event.error is not None:
        line.append(f"  {event.error.type}: {event.error.message}", style="red")
    return line


def _decoded(entries: _Entries) -> Iterator[tuple[bytes, BusEvent]]:
    for entry_id, fields in entries:
        try:
            yield entry_id, decode_event(fields.get(EVENT_FIELD, b""))
        except EventValidationError:
            continue  # invalid entries are the dead-letter stream's business
