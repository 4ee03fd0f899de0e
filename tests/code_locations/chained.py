"""A code location whose failure sensor requests another job, as Dagster's can."""

from __future__ import annotations

from engine import job, op
from sensors import RunFailureSensorContext, RunRequest, run_failure_sensor


@op
def explode() -> None:
    raise ValueError("nightly load failed")


@job
def nightly() -> None:
    explode()


@op
def repair() -> str:
    return "repaired"


@job
def cleanup_job() -> None:
    repair()


@run_failure_sensor(monitored_jobs=[nightly], request_job=cleanup_job)
def repair_after_failure(context: RunFailureSensorContext) -> RunRequest:
    return RunRequest(run_key=f"repair-{context.run.run_id}")
