"""Building the resources hooks and sensors ask for, once per worker process.

A hook's resources come from its job's ``resource_defs`` in the worker's code location; a
sensor's from the code location's ``Definitions(resources=...)``. A factory
(``ResourceFactory``, e.g. ``SlackResource``) is built here, in the worker, with the
worker's environment, so tokens never travel in events. Built resources are cached.

The run config an event carries is used only through ``engine.resources.wire_config``:
redacted values are dropped (the code location's own value stays) and an
``{"env": NAME}`` is resolved only when the code location declares ``NAME`` itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bus.settings import BusSettings
from bus.types import ResourceFactory, ResourceInitContext
from engine.errors import RunConfigError
from engine.resources import declared_env_names, wire_config
from sensors.boundary import call_user_code
from sensors.errors import CodeLocationError
from sensors.handlers import Handler
from sensors.hook_threads import HookThreads
from sensors.registry import CodeLocation


class ResourceBuilder:
    """Builds and caches resources per (job, key).

    Args:
        location: the loaded code location.
        env: the worker's environment, captured once at startup.
        timeout_s: how long a factory may take, in seconds.
        settings: the worker's settings, handed to factories (``ResourceInitContext``).
        threads: the thread pool for sync factories (the hooks'; default: the loop's).
    """

    def __init__(
        self,
        location: CodeLocation,
        *,
        env: Mapping[str, str],
        timeout_s: float,
        settings: BusSettings | None = None,
        threads: HookThreads | None = None,
    ) -> None:
        self._location = location
        self._env = env
        self._settings = settings
        self._timeout_s = timeout_s
        self._threads = threads
        self._cache: dict[tuple[str | None, str, str], Any] = {}
        # The variables an event's run config may name: those the code itself declares.
        self._declared_env = declared_env_names(
            [
                *location.resources.values(),
                *(d for job in location.jobs.values() for d in job.resource_defs.values()),
            ]
        )

    def __repr__(self) -> str:
        return f"<ResourceBuilder built={len(self._cache)}>"

    async def build(self, handler: Handler, *, event_id: str, attempt: int) -> dict[str, Any]:
        """The resources ``handler`` needs, built (through the user-code boundary) once.

        Raises:
            CodeLocationError: a required key is not defined for the handler's job.
            HookExecutionError: a resource factory raised.
        """
        defs = self._definitions_for(handler)
        resources: dict[str, Any] = {}
        for key in sorted(handler.resource_keys):
            try:
                config = wire_config(
                    key, handler.resource_config.get(key, {}), declared_env=self._declared_env
                )
            except RunConfigError as exc:
                raise CodeLocationError(f"{handler.name}: {exc}") from None
            # One build per distinct run config of a resource (runs of a job usually agree).
            cache_key = (handler.job_name, key, json.dumps(config, sort_keys=True, default=str))
            if cache_key not in self._cache:
                if key not in defs:
                    raise CodeLocationError(
                        f"{handler.name} requires resource {key!r}, which job "
                        f"{handler.job_name!r} does not define: got {sorted(defs)}. Add it to "
                        "the job's resource_defs."
                    )
                self._cache[cache_key] = await self._create(
                    defs[key], handler, event_id, attempt, config
                )
            resources[key] = self._cache[cache_key]
        return resources

    def _definitions_for(self, handler: Handler) -> Mapping[str, object]:
        if handler.job_name is None:
            return self._location.resources
        job = self._location.job(handler.job_name)
        return job.resource_defs if job is not None else {}

    async def _create(
        self,
        definition: object,
        handler: Handler,
        event_id: str,
        attempt: int,
        config: Mapping[str, Any],
    ) -> Any:
        if not isinstance(definition, ResourceFactory):
            return definition
        context = ResourceInitContext(config=config, env=self._env, settings=self._settings)
        return await call_user_code(
            definition.create_resource,
            context,
            handler=handler.name,
            event_id=event_id,
            attempt=attempt,
            timeout_s=self._timeout_s,
            threads=self._threads,
        )
