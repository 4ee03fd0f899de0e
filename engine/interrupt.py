"""Stopping a running op on cancel, for ops that say it is safe (``@op(interruptible=True)``).

Most ops are stopped at the next op boundary: a cancel never cuts a write in half. An op
declared interruptible, running in the run's main thread, is interrupted at once: the
heartbeat thread sends SIGUSR1 to the main thread, whose handler raises ``RunCancelled``
inside the op (a blocking ``time.sleep`` or socket read returns early too). The op then
ends ``cancelled``.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from engine.errors import RunCancelled

#: The signal used to interrupt the main thread (only while an interruptible op runs).
INTERRUPT_SIGNAL = signal.SIGUSR1


class Interrupter:
    """Interrupts the main thread while, and only while, an interruptible op runs in it."""

    def __init__(self) -> None:
        self._armed = False

    def __repr__(self) -> str:
        return f"<Interrupter armed={self._armed}>"

    def armed(self, interruptible: bool) -> contextlib.AbstractContextManager[None]:
        """Allow ``interrupt`` while the block runs (if ``interruptible``, main thread only)."""
        if not interruptible or threading.current_thread() is not threading.main_thread():
            return contextlib.nullcontext()  # every op passes here: keep it cheap
        return self._arm()

    @contextlib.contextmanager
    def _arm(self) -> Iterator[None]:
        previous = signal.signal(INTERRUPT_SIGNAL, self._raise)
        self._armed = True
        try:
            yield
        finally:
            self._armed = False
            signal.signal(INTERRUPT_SIGNAL, previous)

    def interrupt(self) -> bool:
        """Interrupt the running op, if one is armed; return whether a signal was sent."""
        ident = threading.main_thread().ident
        if not self._armed or ident is None:
            return False
        signal.pthread_kill(ident, INTERRUPT_SIGNAL)
        return True

    def _raise(self, signum: int, frame: FrameType | None) -> None:
        if self._armed:
            raise RunCancelled("the op was interrupted by a cancel")
