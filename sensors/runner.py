"""Running a worker as a process: the event loop, signals and clean shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping

from sensors.registry import CodeLocation
from sensors.settings import WorkerSettings
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


def _stop(worker: Worker, signum: int) -> None:
    logger.info(
        "worker %s: stopping on %s", worker.settings.consumer_name, signal.Signals(signum).name
    )
    worker.stop()
