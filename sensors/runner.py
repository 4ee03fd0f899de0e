"""Running a worker as a process: the event loop, signals and clean shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Mapping

from bus.connection import connect, connect_async
from bus.types import ResourceInitContext
from notifiers.console import ConsoleNotifier
from notifiers.resource import SlackResource
from sensors.hook_threads import HOOK_THREAD
from sensors.metrics import serve_metrics
from sensors.registry import CodeLocation
from sensors.settings import WatchSettings, WorkerSettings
from sensors.watcher import Watcher
from sensors.worker import Worker

logger = logging.getLogger(__name__)

#: Allocations (net) between two young-generation collections; CPython's default is 700.
GC_GEN0_THRESHOLD = 3_000


def run_worker(location: CodeLocation, settings: WorkerSettings, *, env: Mapping[str, str]) -> None:
    """Run a worker until SIGTERM or SIGINT, then stop gracefully and return.

    A sync hook still running after the grace period cannot be interrupted (Python threads
    cannot be killed) and its entry has been handed back; the process then exits without
    waiting for that thread, so that a stop never takes longer than the grace period.
    """
    if settings.metrics_port is not None:
        serve_metrics(settings, port=settings.metrics_port)
    asyncio.run(_serve(location, settings, env))
    stuck = _stuck_hook_threads(timeout_s=1.0)
    if stuck:
        logger.warning(
            "worker %s: %d hook thread(s) still running after the grace period; exiting "
            "without them (their entries were handed back)",
            settings.consumer_name,
            len(stuck),
        )
        logging.shutdown()
        os._exit(0)


async def _serve(location: CodeLocation, settings: WorkerSettings, env: Mapping[str, str]) -> None:
    worker = Worker(location, settings, env=env)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _stop, worker, signum)
    tune_garbage_collector()
    try:
        await worker.run()
    finally:
        await worker.close()


def tune_garbage_collector() -> None:
    """Make the cyclic garbage collector cheap for a process that handles events for hours.

    Measured on the throughput benchmark, collections cost a fifth of a worker's CPU
    (~10 µs an event): each event makes dozens of container objects, so young collections
    ran every ~20 events and older ones kept walking everything imported at start
    (pydantic, redis-py, the code location), which never becomes garbage. So what exists
    now is frozen (left out of every later collection) and young collections run every
    ``GC_GEN0_THRESHOLD`` allocations. Cycles are still collected: less often, not never
    (the benchmark's 1,000,000-event RSS figure checks that memory stays flat). Not
    rarer: a failing hook leaves a cycle (exception, traceback, frames and their locals)
    that lives until a collection, and at 10,000 a review measured 3,000 failing hooks
    with 200 KB of locals each peak at twice the RSS of Python's default; at 3,000 the
    CPU saved is the same (within the noise of the in-process measure).
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, older, oldest)


def run_watcher(settings: WatchSettings, *, env: Mapping[str, str]) -> None:
    """Watch the alerting path until SIGTERM or SIGINT (``hookbus watch``)."""
    asyncio.run(_watch(settings, env))


async def _watch(settings: WatchSettings, env: Mapping[str, str]) -> None:
    primary = SlackResource().create_resource(ResourceInitContext(env=env, settings=settings))
    fallbacks = [] if isinstance(primary, ConsoleNotifier) else [ConsoleNotifier(label="watcher")]
    client, lease_client = connect(settings), connect_async(settings)
    watcher = Watcher(
        client,
        lease_client,
        settings=settings,
        notifiers=[primary, *fallbacks],
        owner=f"watcher-{socket.gethostname()}-{os.getpid()}",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    logger.info("watcher started %r", watcher)
    try:
        await watcher.run(stop)
    finally:
        client.close()
        await lease_client.aclose()


def _stuck_hook_threads(*, timeout_s: float) -> list[threading.Thread]:
    """Hook threads still busy: idle pool threads exit at once after ``Worker.close``."""
    deadline = time.monotonic() + timeout_s
    threads = [thread for thread in threading.enumerate() if thread.name.startswith(HOOK_THREAD)]
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [thread for thread in threads if thread.is_alive()]


#: How long past the grace period a stopping worker may take (closing connections, the
#: scheduler) before the process exits anyway, in seconds.
HARD_STOP_MARGIN_S = 10.0


def _stop(worker: Worker, signum: int) -> None:
    name, consumer = signal.Signals(signum).name, worker.settings.consumer_name
    if worker.stop_requested:
        # A second signal (a second Ctrl-C, or SIGTERM after SIGINT): the operator wants out
        # now. Entries still held stay pending and are reclaimed by other workers.
        logger.warning("worker %s: %s again; exiting now without finishing", consumer, name)
        _exit_now(1)
    logger.info("worker %s: stopping on %s", consumer, name)
    worker.stop()
    # Whatever a stop waits on (a hung connection, a stuck task), the process ends in time.
    deadline_s = worker.settings.shutdown_grace_s + HARD_STOP_MARGIN_S
    asyncio.get_running_loop().call_later(deadline_s, _hard_stop, consumer, deadline_s)


def _hard_stop(consumer: str, deadline_s: float) -> None:
    logger.error("worker %s: still stopping after %.0fs; exiting now", consumer, deadline_s)
    _exit_now(1)


def _exit_now(code: int) -> None:
    logging.shutdown()
    os._exit(code)
