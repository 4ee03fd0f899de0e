"""The running job's heartbeat: liveness deadline, cancel requests, spooled events.

A daemon thread that, every ``heartbeat_interval_s``, in one round trip pushes the run's
liveness deadline to the Redis server's now + ``heartbeat_timeout_s``
(``bus.runs.ALIVE_SCRIPT``: on the server's clock, so a skewed engine clock does not
matter; only while the run is still alive, so it never brings back a run someone already
claimed as crashed — it tells the publisher instead) and reads the run's cancel request;
then lets the publisher retry events that wait for Redis. It stops with the run. If the
whole process dies, the deadline is not pushed any more and a worker publishes the crash
(``bus.runs``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis

from bus.keys import Keys
from bus.publisher import Publisher
from bus.runs import ALIVE_SCRIPT, alive_args

logger = logging.getLogger(__name__)


class Heartbeat:
    """Keeps one run alive in Redis and notices cancel requests.

    Args:
        publisher: the run's publisher (its client, and its backlog to retry).
        keys: key names.
        run_id: the run.
        interval_s: how often to beat, in seconds.
        timeout_s: how far ahead each beat pushes the deadline, in seconds.
        on_cancel: called once, from this thread, with the reason, when a cancel is asked.
    """

    def __init__(
        self,
        publisher: Publisher,
        *,
        keys: Keys,
        run_id: str,
        interval_s: float,
        timeout_s: float,
        on_cancel: Callable[[str], None],
    ) -> None:
        self._publisher = publisher
        self._keys = keys
        self._run_id = run_id
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._on_cancel = on_cancel
        self._stop = threading.Event()
        self._script = publisher.client.register_script(ALIVE_SCRIPT)
        self._cancel_seen = False
        self._thread = threading.Thread(
            target=self._loop, name=f"hookbus-heartbeat-{run_id[:8]}", daemon=True
        )
        self.beats = 0

    def __repr__(self) -> str:
        return f"<Heartbeat run_id={self._run_id!r} beats={self.beats}>"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop beating (the terminal event removes the liveness entry)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self._interval_s + 1)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.beat()

    def beat(self) -> None:
        """One beat: deadline and cancel check in one round trip, then retry the backlog."""
        try:
            script_keys, args = alive_args(self._keys, self._run_id, self._timeout_s)
            alive, reason = self._script(keys=script_keys, args=args)
        except redis.RedisError as exc:
            logger.warning("heartbeat failed run_id=%s (%s)", self._run_id, type(exc).__name__)
            return
        self.beats += 1
        if alive == -1:
            self._publisher.declared_crashed(self._run_id)
        if reason and not self._cancel_seen:
            self._cancel_seen = True
            self._on_cancel(reason.decode() if isinstance(reason, bytes) else str(reason))
        if self._publisher.backlog:
            self._publisher.flush()
