"""The lifecycle code location plus a run failure sensor, for crash tests with many workers."""

from __future__ import annotations

from sensors import RunFailureSensorContext, run_failure_sensor
from tests.code_locations.lifecycle import cleanup, hanging, record

__all__ = ["cleanup", "crash_report", "hanging"]


@run_failure_sensor(monitored_jobs=[hanging])
def crash_report(context: RunFailureSensorContext) -> None:
    record("crash_report", run_id=context.run.run_id, state=str(context.run_status))
