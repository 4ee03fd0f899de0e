"""Running a worker as a process: the event loop, signals and clean shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Mapping

from bus.connection import connect, connect_async
from bus.types import ResourceInitContext
from notifiers.console import ConsoleNotifier
from notifiers.resource import SlackResource
from sensors.registry import CodeLocation
from sensors.settings import WatchSettings, WorkerSettings
from sensors.watcher import Watcher
from sensors.worker import Worker

logger = logging.getLogger(__name__)


def run_worker(location: CodeLocation, settings: WorkerSettings, *, env: Mapping[str, str]) -> None:
    """Run a worker until SIGTERM or SIGINT, then stop gracefully and return."""
    asyncio.run(_serve(location, settings, env))


async def _serve(location: CodeLocation, settings: WorkerSettings, env: Mapping[str, str]) -> None:
    worker = Worker(location, settings, env=env)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _stop, worker, signum)
    try:
        await worker.run()
    finally:
        await worker.close()


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


def _stop(worker: Worker, signum: int) -> None:
    logger.info(
        "worker %s: stopping on %s", worker.settings.consumer_name, signal.Signals(signum).name
    )
    worker.stop()
