"""Hooks and sensors, and the worker process that runs them from the bus.

Users write ``@failure_hook``/``@success_hook`` hooks and ``@run_failure_sensor`` sensors in
a code location module; ``hookbus worker MODULE`` (``sensors.runner.run_worker``) loads it
(``CodeLocation.load``) and runs them for every matching event.
"""

from bus.events import CheckKind
from sensors.checks import (
    CheckContext,
    CheckDefinition,
    check_context_from_event,
    failure_count_check,
    job_freshness_check,
    run_stuck_check,
)
from sensors.context import HookContext, OpException, build_hook_context
from sensors.definitions import Definitions
from sensors.errors import (
    CodeLocationError,
    HookExecutionError,
    HookNotFoundError,
    SensorNotFoundError,
    SensorsError,
)
from sensors.hooks import HookDefinition, failure_hook, success_hook
from sensors.registry import CodeLocation
from sensors.run_requests import RunRequest
from sensors.run_status import (
    RunFailureSensorContext,
    RunStatusSensorContext,
    SensorDefinition,
    build_run_status_sensor_context,
    run_failure_sensor,
    run_status_sensor,
)
from sensors.runner import run_worker
from sensors.settings import WorkerSettings
from sensors.slack_sensor import make_slack_on_run_failure_sensor
from sensors.state_args import JobRun, OpRun, State
from sensors.worker import Worker

__all__ = [
    "CheckContext",
    "CheckDefinition",
    "CheckKind",
    "CodeLocation",
    "CodeLocationError",
    "Definitions",
    "HookContext",
    "HookDefinition",
    "HookExecutionError",
    "HookNotFoundError",
    "JobRun",
    "OpException",
    "OpRun",
    "RunFailureSensorContext",
    "RunRequest",
    "RunStatusSensorContext",
    "SensorDefinition",
    "SensorNotFoundError",
    "SensorsError",
    "State",
    "Worker",
    "WorkerSettings",
    "build_hook_context",
    "build_run_status_sensor_context",
    "check_context_from_event",
    "failure_count_check",
    "failure_hook",
    "job_freshness_check",
    "make_slack_on_run_failure_sensor",
    "run_failure_sensor",
    "run_status_sensor",
    "run_stuck_check",
    "run_worker",
    "success_hook",
]
