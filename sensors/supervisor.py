"""``hookbus worker MODULE --processes P``: P worker processes, restarted if they die.

Each child is an ordinary ``hookbus worker MODULE`` with its own consumer name
(``<name>-<slot>``), so the children share the consumer groups like workers on separate
machines would. A child that exits is started again (after a short, growing pause); its
entries left pending are reclaimed. SIGTERM/SIGINT is passed on to every child, which
stops gracefully; the supervisor waits for them for the grace period (plus a margin), then
kills what is left.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from types import FrameType

from bus.backoff import Backoff
from sensors.settings import WorkerSettings

logger = logging.getLogger(__name__)

#: How often the supervisor looks at its children, in seconds.
POLL_S = 0.2
#: Extra time, beyond the workers' grace period, that children get to exit, in seconds.
EXIT_MARGIN_S = 5.0


class Supervisor:
    """Keeps ``processes`` workers of ``module`` running until asked to stop.

    Args:
        module: the code location (import string).
        settings: the workers' settings (consumer name, concurrency, grace period).
        processes: how many worker processes.
        flags: extra ``hookbus worker`` flags for the children (logging).
        env: the environment the children start with (default: this process's).
    """

    def __init__(
        self,
        module: str,
        settings: WorkerSettings,
        *,
        processes: int,
        flags: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.module = module
        self.settings = settings
        self.processes = processes
        self._flags = list(flags)
        self._env = dict(os.environ if env is None else env)
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._restarts: dict[int, int] = {}
        self._stopping = False
        self._restart_backoff = Backoff(base_s=0.5, max_s=10.0, jitter=0.0)

    def __repr__(self) -> str:
        return (
            f"<Supervisor module={self.module!r} processes={self.processes} "
            f"alive={sum(child.poll() is None for child in self._children.values())}>"
        )

    def consumer_name(self, slot: int) -> str:
        """The consumer name of the child in ``slot``."""
        return f"{self.settings.consumer_name}-{slot}"

    def run(self) -> int:
        """Start the children, keep them running, and return 0 once stopped by a signal."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        for slot in range(self.processes):
            self._start(slot)
        while not self._stopping:
            self._restart_dead()
            time.sleep(POLL_S)
        self._stop_children()
        return 0

    def _start(self, slot: int) -> None:
        env = {
            **self._env,
            "HOOKBUS_CONSUMER_NAME": self.consumer_name(slot),
            "HOOKBUS_CONCURRENCY": str(self.settings.concurrency),
        }
        command = [sys.executable, "-m", "sensors", "worker", *self._flags, self.module]
        child = subprocess.Popen(command, env=env)
        self._children[slot] = child
        logger.info("worker process started slot=%d pid=%d", slot, child.pid)

    def _restart_dead(self) -> None:
        for slot, child in list(self._children.items()):
            code = child.poll()
            if code is None or self._stopping:
                continue
            self._restarts[slot] = self._restarts.get(slot, 0) + 1
            delay_s = self._restart_backoff.delay_s(self._restarts[slot]) or 0.0
            logger.warning(
                "worker process exited slot=%d pid=%d code=%d; restarting in %.1fs",
                slot,
                child.pid,
                code,
                delay_s,
            )
            time.sleep(delay_s)
            self._start(slot)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        logger.info("supervisor stopping on %s", signal.Signals(signum).name)
        self._stopping = True

    def _stop_children(self) -> None:
        for child in self._children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.settings.shutdown_grace_s + EXIT_MARGIN_S
        for slot, child in self._children.items():
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.error(
                    "worker process slot=%d pid=%d did not stop; killing it", slot, child.pid
                )
                child.kill()
                child.wait()


def supervise_workers(
    module: str, settings: WorkerSettings, *, processes: int, flags: Sequence[str] = ()
) -> int:
    """Run ``processes`` supervised workers of ``module`` until SIGTERM/SIGINT; exit code."""
    return Supervisor(module, settings, processes=processes, flags=flags).run()
