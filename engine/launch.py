"""Running a job named by a code location and a job name (what ``hookbus run`` does)."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

import redis

from bus.connection import connect
from bus.errors import BusUnavailableError
from bus.spool import flush_spool
from engine.config import RunConfig, resolve_run_config
from engine.errors import DefinitionError
from engine.job import JobDefinition
from engine.result import RunResult
from engine.run import new_run_id
from engine.settings import EngineSettings
from engine.supervise import SupervisedExit, supervise

logger = logging.getLogger(__name__)


def find_job(module_name: str, job_name: str) -> JobDefinition:
    """The job called ``job_name`` in code location ``module_name``.

    Raises:
        DefinitionError: the module cannot be imported or has no such job.
    """
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DefinitionError(
            f"code location {module_name!r} cannot be imported: {exc}. Pass an importable module "
            "path and run from the directory that contains it."
        ) from exc
    jobs = {obj.name: obj for obj in vars(module).values() if isinstance(obj, JobDefinition)}
    if job_name not in jobs:
        raise DefinitionError(
            f"job {job_name!r} is not defined in code location {module_name!r}: got "
            f"{sorted(jobs)}. Pass one of those names."
        )
    return jobs[job_name]


def run_job(
    module_name: str,
    job_name: str,
    *,
    settings: EngineSettings,
    run_id: str | None = None,
    config_path: Path | None = None,
) -> RunResult:
    """Run a job of a code location in this process and return its result.

    Raises:
        DefinitionError: no such job.
        RunConfigError: the run config does not fit the job.
    """
    return find_job(module_name, job_name).execute_in_process(
        raise_on_error=False,
        settings=settings,
        run_id=run_id,
        run_config=str(config_path) if config_path else None,
    )


def run_supervised(
    module_name: str,
    job_name: str,
    *,
    settings: EngineSettings,
    config_path: Path | None = None,
) -> SupervisedExit:
    """``hookbus run``: flush this machine's spool, run the job in a watched child process.

    The job and the config are checked here first, so a typo fails before any child starts.

    Raises:
        DefinitionError: no such job.
        RunConfigError: the run config does not fit the job.
    """
    job = find_job(module_name, job_name)
    resolve_run_config(job, RunConfig.load(config_path), redact_keys=settings.redact_keys)
    _flush_leftovers(settings)
    run_id = new_run_id()
    command = [sys.executable, "-m", "sensors", "run", "--in-process", "--run-id", run_id]
    if config_path is not None:
        command += ["--config", str(config_path)]
    return supervise([*command, module_name, job_name], run_id=run_id, settings=settings)


def flush_spool_dir(settings: EngineSettings) -> int:
    """``hookbus spool flush``: publish the spool files of runs that have ended.

    Raises:
        BusUnavailableError: Redis did not answer (the files stay for the next flush).
    """
    client = connect(settings)
    try:
        return flush_spool(client, settings.spool_dir, keys=settings.keys)
    except redis.RedisError as exc:
        raise BusUnavailableError(
            f"spool {str(settings.spool_dir)!r} not flushed: Redis did not answer: got "
            f"{type(exc).__name__}. Check HOOKBUS_REDIS_URL and run "
            "hookbus spool flush again; the events stay on disk until then."
        ) from exc
    finally:
        client.close()


def _flush_leftovers(settings: EngineSettings) -> None:
    client = connect(settings)
    try:
        flush_spool(client, settings.spool_dir, keys=settings.keys)
    except redis.RedisError as exc:
        logger.warning("spool not flushed (%s); it waits for the next run", type(exc).__name__)
    finally:
        client.close()
