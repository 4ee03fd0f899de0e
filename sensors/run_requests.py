"""Sensors that start jobs: ``request_job=`` and ``RunRequest``, as in Dagster.

A run status (or failure) sensor declared with ``request_job=some_job`` may return a
``RunRequest`` (or several). The worker then starts ``hookbus run MODULE JOB`` as a
supervised child process with the request's run config. A ``run_key`` (default: the event
id) is remembered in Redis, so a redelivered event or a second worker never starts the same
run twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any

import redis.asyncio as aioredis
import yaml
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from bus.keys import Keys

logger = logging.getLogger(__name__)

#: How long a run key is remembered, in seconds (a week).
RUN_KEY_TTL_S = 7 * 24 * 3600


class RunRequest(BaseModel):
    """A request, returned by a sensor, to run its ``request_job``.

    Attributes:
        run_key: identifies the request: a second request with the same key is ignored
            (default: the id of the event the sensor ran for).
        run_config: the run config (``{"ops": {...}, "resources": {...}}``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_key: str | None = None
    run_config: dict[str, JsonValue] = Field(default_factory=dict)


def run_requests(result: object) -> list[RunRequest]:
    """The ``RunRequest``s a sensor returned (one, an iterable of them, or none)."""
    if isinstance(result, RunRequest):
        return [result]
    if isinstance(result, Iterable) and not isinstance(result, str | bytes | Mapping):
        return [item for item in result if isinstance(item, RunRequest)]
    return []


class RunLauncher:
    """Starts requested runs as ``hookbus run`` child processes, once per run key.

    Args:
        client: an asyncio Redis client (for the run keys).
        keys: key names.
        module: the code location the worker loaded (the job must be in it).
        env: the environment the child starts with.
    """

    def __init__(
        self, client: aioredis.Redis, *, keys: Keys, module: str, env: Mapping[str, str]
    ) -> None:
        self._client = client
        self._keys = keys
        self.module = module
        self._env = dict(env)
        self.launched = 0

    def __repr__(self) -> str:
        return f"<RunLauncher module={self.module!r} launched={self.launched}>"

    async def launch(self, job: str, result: Any, *, sensor: str, event_id: str) -> None:
        """Start ``job`` for each ``RunRequest`` in ``result`` not already started."""
        for request in run_requests(result):
            run_key = request.run_key or event_id
            key = self._keys.run_request(sensor, run_key)
            if not await self._client.set(key, job, nx=True, ex=RUN_KEY_TTL_S):
                logger.info(
                    "run request skipped (already started) sensor=%s key=%s", sensor, run_key
                )
                continue
            await self._start(job, request, sensor=sensor, run_key=run_key)

    async def _start(self, job: str, request: RunRequest, *, sensor: str, run_key: str) -> None:
        command = [sys.executable, "-m", "sensors", "run", self.module, job]
        if request.run_config:
            descriptor, name = tempfile.mkstemp(prefix="hookbus-run-", suffix=".yaml")
            with os.fdopen(descriptor, "w") as config:
                config.write(yaml.safe_dump(request.run_config))
            command[4:4] = ["--config", name]
        # Through a shell that backgrounds it and exits at once: the run is its own
        # process (its own supervisor), not the worker's child, and outlives a worker stop.
        launcher = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            '"$@" &',
            "hookbus-run",
            *command,
            env=self._env,
            start_new_session=True,
        )
        await launcher.wait()
        self.launched += 1
        logger.info("run requested sensor=%s job=%s key=%s", sensor, job, run_key)
