"""Running a job named by a code location and a job name (what ``hookbus run`` does)."""

from __future__ import annotations

import importlib

from engine.errors import DefinitionError
from engine.job import JobDefinition
from engine.result import RunResult
from engine.settings import EngineSettings


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


def run_job(module_name: str, job_name: str, *, settings: EngineSettings) -> RunResult:
    """Run a job of a code location in this process and return its result."""
    return find_job(module_name, job_name).execute_in_process(
        raise_on_error=False, settings=settings
    )
