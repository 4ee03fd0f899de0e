"""Executing a job in this process: check config, connect, run, and report the result."""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bus.connection import connect
from bus.publisher import Publisher
from bus.spool import SpoolFile
from bus.states import RunState
from engine.config import RunConfig, redact, resolve_run_config
from engine.errors import RunFailedError
from engine.outputs import summarise_output
from engine.result import RunResult
from engine.run import Run, new_run_id
from engine.settings import EngineSettings

if TYPE_CHECKING:
    from engine.job import JobDefinition


def execute_job(
    job: JobDefinition,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    run_config: Mapping[str, Any] | str | None,
    raise_on_error: bool,
    settings: EngineSettings | None,
    tags: Mapping[str, str] | None,
    run_id: str | None,
    env: Mapping[str, str] | None,
) -> RunResult:
    """What ``JobDefinition.execute_in_process`` does (see there)."""
    settings = settings or EngineSettings()
    config = resolve_run_config(job, RunConfig.load(run_config), redact_keys=settings.redact_keys)
    run_id = run_id or new_run_id()
    client = connect(settings)
    publisher = Publisher(
        client,
        keys=settings.keys,
        spool=SpoolFile(settings.spool_dir, run_id),
        heartbeat_timeout_s=settings.heartbeat_timeout_s,
        linger_s=settings.publish_linger_ms / 1000,
    )
    run = Run(
        job,
        publisher=publisher,
        settings=settings,
        run_id=run_id,
        tags=tags,
        parameters=redact(_parameters(job, args, kwargs), settings.redact_keys),
        config=config,
        env=dict(os.environ) if env is None else env,
    )
    try:
        result = run.execute(*args, **kwargs)
    finally:
        client.close()
    if raise_on_error and result.state is not RunState.COMPLETED:
        raise RunFailedError(result)
    return result


def _parameters(
    job: JobDefinition, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The body's arguments by name with defaults, JSON-safe (``flow_run.parameters``)."""
    try:
        bound = inspect.signature(job.fn).bind(*args, **kwargs)
    except TypeError:
        return {}  # the body will raise the same TypeError, as a failed run
    bound.apply_defaults()
    return {key: summarise_output(value) for key, value in bound.arguments.items()}
