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


#: What ``list_failed_ops`` saw, one list per run.
FAILED_OPS: list[list[str]] = []


@run_failure_sensor(monitored_jobs=[nightly])
def list_failed_ops(context: RunFailureSensorContext) -> None:
    FAILED_OPS.append(
        [
            f"{event.op.name}: {event.error.message if event.error else ''}"
            for event in context.get_step_failure_events()
        ]
    )
