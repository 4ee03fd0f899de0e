"""Events for notifier tests, built directly (no engine needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bus import ErrorInfo, OpEvent, OpInfo, OpState, RunEvent, RunInfo, RunState

STARTED = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)


def run_info(run_id: str = "run-1", job: str = "nightly_etl", **tags: str) -> RunInfo:
    return RunInfo(
        run_id=run_id, run_name=f"{job}-{run_id}", job_name=job, tags=tags, started_at=STARTED
    )


def op_failed(
    step_key: str = "load",
    *,
    run_id: str = "run-1",
    job: str = "nightly_etl",
    message: str = "warehouse is read-only",
    error_type: str = "ValueError",
    traceback: str = 'Traceback (most recent call last):\n  File "etl.py", line 3\n',
    seq: int = 5,
    tags: dict[str, str] | None = None,
) -> OpEvent:
    return OpEvent(
        seq=seq,
        occurred_at=STARTED + timedelta(seconds=3.25),
        run=run_info(run_id, job, **(tags or {})),
        op=OpInfo(name=step_key, step_key=step_key, attempt=3, max_attempts=3),
        error=ErrorInfo(type=error_type, message=message, traceback=traceback),
        from_state=OpState.RUNNING,
        to_state=OpState.FAILED,
    )


def run_ended(
    state: RunState = RunState.FAILED, *, run_id: str = "run-1", job: str = "nightly_etl"
) -> RunEvent:
    error = ErrorInfo(type="ValueError", message="load failed") if state != "completed" else None
    return RunEvent(
        seq=99,
        occurred_at=STARTED + timedelta(minutes=2, seconds=5),
        run=run_info(run_id, job),
        error=error,
        from_state=RunState.RUNNING,
        to_state=state,
    )
