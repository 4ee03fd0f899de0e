"""Keeping the check history (``bus.check_history``) up to date from the event streams.

Once per evaluation, before any check is evaluated, ``HistoryIndex.catch_up`` reads each
shard's event stream from its cursor (``Keys.check_cursor``) to the end, records every
run that ended (completed, failed, crashed) in its job's history, and moves the cursor
after each chunk. So each entry is read once, whatever the checks' windows and however
many checks there are; the state is in Redis, so the next evaluation may run on another
worker. A stream with no cursor yet (the first evaluation after deploying the checks) is
read from its oldest entry: the history starts with whatever the streams still hold.
One evaluation reads at most ``max_read`` entries of a shard (``MAX_READ_PER_EVALUATION``):
a first deploy over a million retained entries catches up over a few evaluations instead
of holding one for minutes.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from typing import Final, cast

import redis.asyncio as aioredis

from bus.check_history import (
    FAILED_STATES,
    HISTORY_MIN_KEEP_S,
    HISTORY_SCRIPT,
    RunOutcome,
    history_args,
    outcome_of,
)
from bus.errors import EventValidationError
from bus.events import RunEvent, decode_event
from bus.keys import Keys
from bus.runs import EVENT_FIELD
from bus.states import RunState
from bus.utils import text

logger = logging.getLogger(__name__)

#: Entries read per XRANGE.
SCAN_CHUNK: Final = 1_000
#: Entries of one shard read at most per evaluation; the next one goes on from there.
MAX_READ_PER_EVALUATION: Final = 50_000
#: Byte patterns of the run events that end a run (most entries are op events: cheap
#: tests first, then decoding).
_ENDINGS: Final = tuple(
    f'"to_state":"{state}"'.encode() for state in (RunState.COMPLETED, *sorted(FAILED_STATES))
)

Entry = tuple[bytes, dict[bytes, bytes]]


class HistoryIndex:
    """Records the runs that ended, read incrementally from every shard's stream.

    Args:
        client: an asyncio Redis client.
        keys: key names.
        keep_s: per job, how long its failures are kept (the largest window of its
            failure-count checks); other jobs keep ``HISTORY_MIN_KEEP_S``.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        keys: Keys,
        keep_s: Mapping[str, float],
        max_read: int = MAX_READ_PER_EVALUATION,
    ) -> None:
        self._client = client
        self._keys = keys
        self._keep_s = dict(keep_s)
        self._max_read = max_read
        self.scanned = 0

    def __repr__(self) -> str:
        return f"<HistoryIndex shards={self._keys.shards} scanned={self.scanned}>"

    async def catch_up(self, now_s: float) -> int:
        """Read every shard's new entries and record the runs that ended; return how many
        entries were read. ``now_s`` (epoch s, Redis clock) sets where failures are trimmed.
        """
        read = 0
        for shard in range(self._keys.shards):
            read += await self._catch_up_shard(shard, now_s)
        self.scanned += read
        return read

    async def _catch_up_shard(self, shard: int, now_s: float) -> int:
        stream = self._keys.events_stream(shard)
        cursor_key = self._keys.check_cursor(shard)
        cursor = await self._client.get(cursor_key)
        start = "-" if cursor is None else f"({text(cursor)}"
        read = 0
        while True:
            wanted = min(SCAN_CHUNK, self._max_read - read)
            entries = cast(list[Entry], await self._client.xrange(stream, min=start, count=wanted))
            if not entries:
                return read
            await self._record(entries, now_s)
            last = text(entries[-1][0])
            # After the history: a runner dying in between reads the chunk again (harmless).
            await self._client.set(cursor_key, last)
            read += len(entries)
            start = f"({last}"
            if len(entries) < wanted:
                return read
            if read >= self._max_read:
                logger.info(
                    "check history catching up stream=%s read=%d; the next evaluation goes on",
                    stream,
                    read,
                )
                return read

    async def _record(self, entries: list[Entry], now_s: float) -> None:
        by_job: dict[str, list[tuple[bool, RunOutcome]]] = defaultdict(list)
        for _, fields in entries:
            event = _ended_run(fields.get(EVENT_FIELD))
            outcome = None if event is None else outcome_of(event)
            if event is not None and outcome is not None:
                by_job[event.job_name].append((event.to_state is RunState.COMPLETED, outcome))
        for job_name, ended in by_job.items():
            keep_from = now_s - max(self._keep_s.get(job_name, 0.0), HISTORY_MIN_KEEP_S)
            keys, args = history_args(self._keys, job_name, ended, keep_from=keep_from)
            await self._client.eval(HISTORY_SCRIPT, len(keys), *keys, *args)


def _ended_run(raw: bytes | None) -> RunEvent | None:
    if raw is None or b'"type":"run"' not in raw or not any(end in raw for end in _ENDINGS):
        return None
    try:
        event = decode_event(raw)
    except EventValidationError:
        return None
    return event if isinstance(event, RunEvent) else None
