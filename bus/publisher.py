"""Publishing events to Redis Streams without ever blocking or failing the pipeline.

``Publisher.publish`` is the engine's only way onto the bus. It XADDs the event to its
run's shard and, in the same atomic script (``bus.runs.PUBLISH_SCRIPT``, one round trip),
writes the run's crash-contract record and liveness entry (``bus.runs``). If Redis does
not answer, the event is kept in order in memory and in the run's spool file
(``bus.spool``; failure and terminal events fsynced) and delivered before the next event,
or by the heartbeat thread, once Redis answers again; while Redis is away, attempts back
off so a dead Redis costs the pipeline almost nothing. ``publish`` never raises into user code.

With a linger (``EngineSettings.publish_linger_ms``), events that alert nobody urgently
(op ``pending``/``running``/``completed``/``skipped``, run ``pending``/``running``) do not
wait for Redis: a flusher thread sends what accumulated, in one round trip, within the
linger. Any other event (a failure, a retry, a cancel, a terminal state) is sent at once,
together with everything before it, before ``publish`` returns, never waiting out a
linger; and ``close`` sends the rest. So ordering holds, failure and terminal events are
in Redis before the engine moves on, and nothing is lost on a normal exit (a SIGKILL can
lose the last linger's worth of batched events, never a failure; the run record always
matches the last event sent). The flusher connects as soon as it starts, with the run's
first event, so an urgent event rarely pays for the connection.

If the run's crash was published meanwhile (its heartbeat could not reach Redis for longer
than ``heartbeat_timeout_s`` and a worker claimed it), the record write finds the run's
tombstone and writes nothing (``bus.runs.PUBLISH_SCRIPT``): the publisher logs a warning
once and drops the events that follow, so the run is not brought back after its crash.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final, TypeAlias

import redis

from bus.connection import may_resend
from bus.events import OpEvent, RunEvent, encode_event
from bus.groups import ensure_group
from bus.keys import HOOKS_GROUP, Keys
from bus.runs import EVENT_FIELD, FLUSH_BATCH, PUBLISH_SCRIPT, RunRecord, publish_args
from bus.spool import SpoolFile
from bus.urgency import can_wait, must_be_durable

logger = logging.getLogger(__name__)

#: A run record, or a function that builds it: only the record of the last event of each
#: round trip is written, so the engine can skip building the others.
RecordSource: TypeAlias = RunRecord | Callable[[], RunRecord]

__all__ = ["EVENT_FIELD", "Publisher", "RecordSource"]

#: After Redis failed, wait this long before the next attempt, doubling up to the maximum.
RETRY_FIRST_DELAY_S: Final = 0.5
RETRY_MAX_DELAY_S: Final = 15.0


class Publisher:
    """Appends events to the run's event stream, in order, never raising.

    Args:
        client: a synchronous Redis client.
        keys: key names (prefix and shard count).
        max_len: approximate cap on each stream's length (``XADD MAXLEN ~``); ``None``
            leaves trimming to the workers' retention job.
        spool: where events wait on disk while Redis is away (``None``: memory only).
        heartbeat_timeout_s: how far ahead each write pushes the run's liveness deadline.
        linger_s: how long an event that ``can_wait`` may wait to share a round trip, in
            seconds; 0 sends every event before ``publish`` returns.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        keys: Keys,
        max_len: int | None = None,
        spool: SpoolFile | None = None,
        heartbeat_timeout_s: float = 10.0,
        linger_s: float = 0.0,
    ) -> None:
        self._client = client
        self._keys = keys
        # A run sends all its events to one stream: name it once, not per event.
        self._stream_for_run = functools.lru_cache(maxsize=16)(keys.stream_for_run)
        self._max_len = max_len
        self._spool = spool
        self._timeout_s = heartbeat_timeout_s
        self._groups_ready: set[str] = set()
        # EVALSHA, loaded again by redis-py if Redis restarted without it.
        self._script = client.register_script(PUBLISH_SCRIPT)
        # A client that resends on its own after a lost reply may put an event in the
        # stream twice unknown to us: then nothing is marked, and the ledger checks all.
        self._marks_first_sends = not may_resend(client)
        self._backlog: deque[tuple[str, bytes, bool]] = deque()
        self._record: RecordSource | None = None
        # ``_lock`` guards the backlog and is never held over the network, so queueing an
        # event never waits for a round trip; ``_sending`` lets one delivery run at a time,
        # which keeps the events in order.
        self._lock = threading.RLock()
        self._sending = threading.RLock()
        self._linger_s = linger_s
        self._wake = threading.Condition(self._lock)
        self._flusher: threading.Thread | None = None
        self._flusher_idle = False
        #: Set once the flusher's first connect (``_connect_ahead``) is over, however it went.
        self._connect_ahead_done = threading.Event()
        self._closed = False
        self._retry_at = 0.0
        self._retry_delay_s = RETRY_FIRST_DELAY_S
        #: How many of the backlog's oldest events may already be in Redis (being sent, or
        #: a round trip failed, or spooled): sent with no ``bus.runs.FIRST_SEND_FIELD``.
        self._maybe_sent = 0
        #: How many of the backlog's oldest events were in a round trip that got no answer
        #: (or is under way): only these can be in the stream, so only a batch holding
        #: some is sent as a resend, which looks for them first (``bus.resends``). Unlike
        #: ``_maybe_sent``, what merely waited through an outage is not counted: a backlog
        #: of thousands pays for one look-up, not one per batch.
        self._attempted = 0
        #: How many of the backlog's oldest events are in the spool file already (the file
        #: also holds events delivered since: it is dropped once the backlog is empty).
        self._spooled = 0
        self.published = 0
        #: Set once Redis says this run's crash was published (see ``declared_crashed``).
        self.crashed_by_others = False

    def __repr__(self) -> str:
        return f"<Publisher published={self.published} backlog={len(self._backlog)}>"

    @property
    def backlog(self) -> int:
        """Events waiting for Redis to answer."""
        return len(self._backlog)

    @property
    def client(self) -> redis.Redis:
        """The Redis client (the heartbeat and the cancel poll share it)."""
        return self._client

    def declared_crashed(self, run_id: str) -> None:
        """Note that ``run_id``'s crash was published by someone else; drop what is left.

        Called when a record write or a heartbeat finds the run's tombstone: the run's
        terminal ``crashed`` event is already on the bus, so nothing may follow it.
        """
        with self._lock:
            if self.crashed_by_others:
                return
            self.crashed_by_others = True
            dropped = len(self._backlog)
            self._backlog.clear()
            self._maybe_sent = self._attempted = self._spooled = 0
            self._record = None
            if self._spool is not None:
                self._spool.discard()
        logger.warning(
            "run_id=%s was declared crashed while this engine could not reach Redis (its "
            "heartbeat deadline passed); its crash is published, so this engine publishes "
            "nothing more for it; dropped_events=%d",
            run_id,
            dropped,
        )

    def wait_connected(self, timeout_s: float) -> bool:
        """Wait, at most ``timeout_s``, for the connect the flusher began with the first event.

        A run calls this just before its user code starts (``Run._attempts``): the flusher
        connects in the background, but it needs the GIL back after each round trip of
        redis-py's handshake, and a busy main thread hands it over only every few
        milliseconds; an op that failed at once then waited ~1 ms for the connection
        (measured). Waiting here lets the handshake run at full speed, overlapped with
        the run's start, not with its failure.

        Returns:
            Whether the connect is over (succeeded or failed), or there was none to wait for.
        """
        with self._lock:
            if self._flusher is None:
                return True
        return self._connect_ahead_done.wait(timeout_s)

    def publish(self, event: RunEvent | OpEvent, *, record: RecordSource | None = None) -> bool:
        """Send ``event`` (after any backlog) with the run's ``record``; never raises.

        Returns:
            Whether everything is now in Redis (``False``: kept in the backlog and spool).
        """
        if self.crashed_by_others:
            logger.debug("dropped run_id=%s seq=%d: run declared crashed", event.run_id, event.seq)
            return True
        durable = must_be_durable(event)
        entry = (self._stream_for_run(event.run_id), encode_event(event), durable)
        with self._lock:
            self._backlog.append(entry)
            self._record = record or self._record
            if time.monotonic() < self._retry_at:
                self._keep_for_later()
                return False
            if self._linger_s > 0 and not self._closed and can_wait(event):
                self._wake_flusher()
                return True
        return self.flush(force=True)

    def flush(self, *, force: bool = False) -> bool:
        """Deliver the backlog in order; return whether it is empty.

        Args:
            force: try now even while backing off after a failure.
        """
        with self._sending:
            with self._lock:
                if not force and time.monotonic() < self._retry_at:
                    return not self._backlog
            try:
                self._deliver()
            except redis.RedisError as exc:
                with self._lock:
                    self._defer(exc)
                return False
            with self._lock:
                self._retry_delay_s = RETRY_FIRST_DELAY_S
                self._retry_at = 0.0
            return True

    def close(self) -> None:
        """Stop the flusher and try a last delivery; what is left stays in the spool."""
        with self._lock:
            self._closed = True
            self._wake.notify()
            flusher = self._flusher
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join()
        with self._sending:
            self.flush(force=True)
            if self._spool is not None:
                self._spool.close()

    def _wake_flusher(self) -> None:
        # Called with ``_lock`` held.
        if self._flusher is None:
            self._flusher = threading.Thread(
                target=self._flush_loop, name="hookbus-publisher", daemon=True
            )
            self._flusher.start()
        elif self._flusher_idle:
            # Only an idle flusher needs waking: while it lingers it waits for ``close``
            # alone, and waking it for every event cost a thread switch per event.
            self._wake.notify()

    def _flush_loop(self) -> None:
        """The flusher thread: once events wait, let more gather for the linger, then send."""
        self._connect_ahead()
        while True:
            with self._lock:
                while not self._backlog and not self._closed:
                    self._flusher_idle = True
                    self._wake.wait()
                self._flusher_idle = False
                # ``close`` cuts the linger short (and sends the rest itself).
                if self._wake.wait_for(lambda: self._closed, timeout=self._linger_s):
                    return
            self.flush()

    def _connect_ahead(self) -> None:
        """Connect, and create the waiting events' stream groups, before the first batch is due.

        The flusher starts with a run's first event (``pending``), so this happens as the run
        starts, off its thread. Otherwise the run's first event that cannot wait (an op
        failing at once) would pay for the TCP connect, redis-py's handshake (``HELLO`` and
        a few ``CLIENT`` commands) and the ``XGROUP CREATE``: 1.5 ms measured. It holds
        ``_sending``, so an event that must go out meanwhile waits for this connection
        rather than opening another. A failure counts as a failed delivery (back off).
        """
        try:
            with self._sending:
                with self._lock:
                    streams = {stream for stream, _, _ in self._backlog} - self._groups_ready
                    if self._closed or not streams or time.monotonic() < self._retry_at:
                        return
                try:
                    for stream in streams:
                        self._ensure_hooks_group(stream)
                except redis.RedisError as exc:
                    with self._lock:
                        self._defer(exc)
        finally:
            self._connect_ahead_done.set()

    def _deliver(self) -> None:
        """Send the backlog in batches, in order; called with ``_sending`` held.

        Each batch is copied under ``_lock`` and sent without it, so ``publish`` can queue
        more meanwhile; only this method removes entries, from the left, so the copied
        ones are still the oldest when they are removed.
        """
        while True:
            with self._lock:
                if not self._backlog and self._record is None:
                    return
                batch = list(itertools.islice(self._backlog, FLUSH_BATCH))
                record = self._record if len(batch) == len(self._backlog) else None
                # Some of it may be in the stream already (a round trip went unanswered):
                # the script adds only what is not (``bus.resends``).
                resend = self._attempted > 0
                first_send = not resend and self._maybe_sent == 0 and self._marks_first_sends
                # Counted as maybe in the stream until Redis answers: cut short by anything
                # (a lost reply, a signal's exception), it is sent again unmarked.
                self._maybe_sent = max(self._maybe_sent, len(batch))
                self._attempted = max(self._attempted, len(batch))
            for stream in {stream for stream, _, _ in batch} - self._groups_ready:
                self._ensure_hooks_group(stream)
            built = None
            if record is not None:
                built = record if isinstance(record, RunRecord) else record()
            script_keys, args = publish_args(
                self._keys,
                [(stream, payload) for stream, payload, _ in batch],
                built,
                timeout_s=self._timeout_s,
                max_len=self._max_len,
                first_send=first_send,
                resend=resend,
            )
            outcome = int(self._script(keys=script_keys, args=args))
            if outcome == 0:
                # The run was declared crashed (only a batch carrying a record checks the
                # tombstone, so ``built`` is set): send nothing more for it.
                if built is not None:
                    self.declared_crashed(built.run.run_id)
                return
            if outcome > 1:
                logger.info(
                    "resend: events=%d of %d were already in the stream (an unanswered round "
                    "trip had added them); not added again",
                    outcome - 1,
                    len(batch),
                )
            if not self._sent(len(batch), record):
                return

    def _sent(self, count: int, record: RecordSource | None) -> bool:
        """Redis took the backlog's oldest ``count`` events (and ``record``): drop them;
        False if the heartbeat's ``declared_crashed`` cleared the backlog meanwhile."""
        with self._lock:
            if self.crashed_by_others:
                return False
            for _ in range(count):
                self._backlog.popleft()
            self._maybe_sent = max(0, self._maybe_sent - count)
            self._attempted = max(0, self._attempted - count)
            self._spooled = max(0, self._spooled - count)
            self.published += count
            if record is not None and self._record is record:
                self._record = None
            if self._spool is not None and not self._backlog:
                self._spool.discard()
            return True

    def _defer(self, exc: redis.RedisError) -> None:
        # Called with ``_lock`` held. Redis may have restarted without its data: create the
        # groups again next time.
        self._groups_ready.clear()
        self._keep_for_later()
        self._retry_at = time.monotonic() + self._retry_delay_s
        self._retry_delay_s = min(self._retry_delay_s * 2, RETRY_MAX_DELAY_S)
        logger.warning(
            "publish deferred: Redis unavailable (%s); backlog=%d spooled=%s, retrying in %.1fs",
            type(exc).__name__,
            len(self._backlog),
            self._spool.path if self._spool is not None else None,
            self._retry_at - time.monotonic(),
        )

    def _keep_for_later(self) -> None:
        # Called with ``_lock`` held. What waits now may reach Redis twice (a round trip
        # that went unanswered, or the spool replayed elsewhere): none of it is a first send.
        self._spool_backlog()
        self._maybe_sent = len(self._backlog)

    def _spool_backlog(self) -> None:
        if self._spool is None:
            return
        try:
            for stream, payload, durable in list(self._backlog)[self._spooled :]:
                self._spool.append(stream, payload, fsync=durable)
                self._spooled += 1
        except OSError as exc:
            # A full or read-only disk must not fail the pipeline either: the events stay
            # in memory and go out if Redis answers before this process ends.
            logger.error(
                "spool write failed path=%s (%s); events kept in memory only",
                self._spool.path,
                exc,
            )

    def _ensure_hooks_group(self, stream: str) -> None:
        # The hooks group is created with the stream, at "$", so that an event published
        # before any worker has started is still delivered to the first one.
        ensure_group(self._client, stream, HOOKS_GROUP)
        self._groups_ready.add(stream)
