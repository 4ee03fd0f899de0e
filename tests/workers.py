"""Running a worker in-process in burst mode, for logic tests (fault tests use processes)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from sensors import CodeLocation, Worker, WorkerSettings


def burst(
    location: str | CodeLocation,
    settings: WorkerSettings,
    *,
    env: Mapping[str, str] | None = None,
) -> Worker:
    """Handle everything waiting (the first call also creates the groups); return the worker."""

    async def run() -> Worker:
        loaded = CodeLocation.load(location) if isinstance(location, str) else location
        worker = Worker(loaded, settings, env=env)
        try:
            await worker.run_until_idle()
        finally:
            await worker.close()
        return worker

    return asyncio.run(run())
