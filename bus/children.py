"""Child processes (a private redis-server, the demo's worker and run): started so that a
Ctrl-C never strands one, and stopped politely, then firmly.

A SIGINT that lands while ``subprocess.Popen`` runs raises ``KeyboardInterrupt`` in the
parent after the child was forked but before ``Popen`` returned: the caller never gets
the child to stop it, and the child, forked after the terminal signalled the process
group (or started in a session of its own), never saw the Ctrl-C, so it lives on. Seen
with the demo's worker: a Ctrl-C right after "Starting a worker process" left it running.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold SIGINT inside the block and act on it when the block ends.

    Start a child inside it and keep the child where cleanup finds it (a variable the
    ``finally`` that stops it reads) before the block ends: a Ctrl-C that came meanwhile is
    then raised (``KeyboardInterrupt``, or whatever the previous handler does) at the end
    of the block, where that cleanup runs. Outside the main thread signals cannot be held:
    the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        held.append(signum)

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if not held:
        return
    if callable(previous):
        previous(signal.SIGINT, None)  # the default one raises KeyboardInterrupt
    elif previous == signal.SIG_DFL:
        raise KeyboardInterrupt


def stop_child(process: subprocess.Popen[Any], *, timeout_s: float = 10.0) -> None:
    """SIGTERM ``process`` if it still runs, and SIGKILL it if it has not ended within
    ``timeout_s``; return once it is gone (reaped)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
