"""One execution of a job: its state machine, and every transition published as an event."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

from bus.events import ErrorInfo, HookRef, OpEvent, OpInfo, RunEvent, RunInfo, utc_now
from bus.publisher import Publisher
from bus.states import OpState, RunState
from engine.outputs import summarise_output
from engine.result import OpResult, RunResult
from engine.run_context import enter_run, leave_run

if TYPE_CHECKING:
    from engine.job import JobDefinition
    from engine.op import OpDefinition

logger = logging.getLogger(__name__)


class Run:
    """Executes a job body and publishes each run and op transition, in order.

    ``Run.transition`` and ``Run.op_transition`` are the only places events are made;
    both go through ``Publisher.publish``, which never raises.
    """

    def __init__(
        self,
        job: JobDefinition,
        *,
        publisher: Publisher,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.job = job
        self._publisher = publisher
        run_id = run_id or uuid.uuid4().hex
        self.info = RunInfo(
            run_id=run_id,
            run_name=f"{job.name}-{run_id[:8]}",
            job_name=job.name,
            tags={**job.tags, **(tags or {})},
        )
        self.state = RunState.PENDING
        self._seq = 0
        # One lock orders sequence numbers and publishes, so concurrent ops stay in order.
        self._lock = threading.Lock()
        self._step_counts: Counter[str] = Counter()
        self.ops: dict[str, OpResult] = {}

    def __repr__(self) -> str:
        return f"<Run run_id={self.info.run_id!r} job={self.job.name!r} state={self.state}>"

    def execute(self, *args: Any, **kwargs: Any) -> RunResult:
        """Run the job body to its end and return the result (never raises ``Exception``)."""
        self.transition(RunState.PENDING)
        self.info = self.info.model_copy(update={"started_at": utc_now()})
        token = enter_run(self)
        try:
            self.transition(RunState.RUNNING)
            output = self.job.fn(*args, **kwargs)
        except Exception as exc:
            error = ErrorInfo.from_exception(exc)
            self.transition(RunState.FAILED, error=error)
            return self._result(error=error)
        finally:
            leave_run(token)
            self._publisher.flush()
        self.transition(RunState.COMPLETED)
        return self._result(output=output)

    def execute_op(self, op: OpDefinition, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run one op invocation inside this run; re-raise its exception on failure."""
        step_key = self._next_step_key(op.name)
        hooks = self.job.op_hook_refs + op.hook_refs
        info = OpInfo(name=op.name, step_key=step_key, max_attempts=op.retries + 1)
        self.op_transition(info, None, OpState.RUNNING, hooks=hooks)
        try:
            output = op.fn(*args, **kwargs)
        except Exception as exc:
            error = ErrorInfo.from_exception(exc)
            self.op_transition(info, OpState.RUNNING, OpState.FAILED, hooks=hooks, error=error)
            self.ops[step_key] = OpResult(step_key, OpState.FAILED, info.attempt, error=error)
            raise
        done = info.model_copy(update={"outputs": {"result": summarise_output(output)}})
        self.op_transition(done, OpState.RUNNING, OpState.COMPLETED, hooks=hooks)
        self.ops[step_key] = OpResult(step_key, OpState.COMPLETED, info.attempt, output=output)
        return output

    def transition(self, to_state: RunState, *, error: ErrorInfo | None = None) -> None:
        """Move the run to ``to_state`` and publish the run event."""
        with self._lock:
            from_state = None if self._seq == 0 else self.state
            self.state = to_state
            self._seq += 1
            event = RunEvent(
                seq=self._seq,
                run=self.info,
                hooks=self.job.run_hook_refs,
                error=error,
                from_state=from_state,
                to_state=to_state,
            )
            self._publisher.publish(event)
        logger.info("run_id=%s job=%s state=%s", self.info.run_id, self.job.name, to_state)

    def op_transition(
        self,
        op: OpInfo,
        from_state: OpState | None,
        to_state: OpState,
        *,
        hooks: tuple[HookRef, ...],
        error: ErrorInfo | None = None,
    ) -> None:
        """Publish an op event for ``op`` moving ``from_state`` → ``to_state``."""
        with self._lock:
            self._seq += 1
            event = OpEvent(
                seq=self._seq,
                run=self.info,
                op=op,
                hooks=hooks,
                error=error,
                from_state=from_state,
                to_state=to_state,
            )
            self._publisher.publish(event)
        logger.info(
            "run_id=%s op=%s attempt=%d state=%s",
            self.info.run_id,
            op.step_key,
            op.attempt,
            to_state,
        )

    def _next_step_key(self, op_name: str) -> str:
        with self._lock:
            self._step_counts[op_name] += 1
            count = self._step_counts[op_name]
        return op_name if count == 1 else f"{op_name}_{count}"

    def _result(self, *, output: Any = None, error: ErrorInfo | None = None) -> RunResult:
        return RunResult(
            run_id=self.info.run_id,
            job_name=self.job.name,
            state=self.state,
            ops=dict(self.ops),
            output=output,
            error=error,
        )
