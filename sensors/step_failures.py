"""A failed run's failed ops, read back from its stream for a failure sensor's context.

``RunFailureSensorContext.get_step_failure_events()`` calls this lazily (only sensors that
ask pay for it): it scans the run's shard stream from the run's start to its failure event
and keeps that run's op ``failed``/``crashed`` events.
"""

from __future__ import annotations

from functools import partial
from typing import cast

import redis

from bus.errors import EventValidationError
from bus.events import OpEvent, RunEvent, decode_event
from bus.keys import Keys
from bus.runs import EVENT_FIELD
from bus.states import OpState

#: Entries scanned at most for one run (a run that long is summarised by what fits).
MAX_SCANNED = 50_000
_CHUNK = 1_000
_FAILED = {OpState.FAILED, OpState.CRASHED}


class StepFailures:
    """Reads failed op events of runs (a sync client: sensors call it from their thread).

    Args:
        client: a synchronous Redis client.
        keys: key names.
    """

    def __init__(self, client: redis.Redis, *, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    def __repr__(self) -> str:
        return f"<StepFailures prefix={self._keys.prefix!r}>"

    def loader(self, event: RunEvent) -> partial[tuple[OpEvent, ...]]:
        """A function returning ``event``'s run's failed op events when called."""
        return partial(self.load, event)

    def load(self, event: RunEvent) -> tuple[OpEvent, ...]:
        """The failed op events of ``event``'s run, up to ``event``, oldest first."""
        began = event.run.started_at or event.occurred_at
        start = f"{max(int(began.timestamp() * 1000) - 1000, 0)}-0"
        end = f"{int(event.occurred_at.timestamp() * 1000) + 1000}"
        needle = event.run_id.encode()
        found: list[OpEvent | None] = []
        scanned = 0
        while scanned < MAX_SCANNED:
            entries = cast(
                list[tuple[bytes, dict[bytes, bytes]]],
                self._client.xrange(
                    self._keys.stream_for_run(event.run_id), min=start, max=end, count=_CHUNK
                ),
            )
            found.extend(_failed_op(fields.get(EVENT_FIELD), needle) for _, fields in entries)
            scanned += len(entries)
            if len(entries) < _CHUNK:
                break
            start = "(" + entries[-1][0].decode()
        return tuple(
            op_event
            for op_event in found
            if op_event is not None and op_event.run_id == event.run_id
        )


def _failed_op(raw: bytes | None, needle: bytes) -> OpEvent | None:
    if raw is None or needle not in raw or b'"type":"op"' not in raw:
        return None
    try:
        event = decode_event(raw)
    except EventValidationError:
        return None
    return event if isinstance(event, OpEvent) and event.to_state in _FAILED else None
