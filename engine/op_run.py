"""One op invocation inside a run: skip, attempts with retries, outputs; and ``submit``.

Every transition goes through ``Run.op_transition``. An op whose input comes from an op
that did not complete is skipped; an op called after a cancel request is skipped and the
cancel raised (``RunCancelled``); a failing attempt with retries left publishes
``retrying`` and sleeps ``retry_delay_seconds``; only the last failure publishes ``failed``
(so failure hooks run once, after the retries).
"""

from __future__ import annotations

import contextvars
import logging
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from bus.events import ErrorInfo, HookRef, OpInfo
from bus.states import OpState
from engine.config import redact_output
from engine.context import OpExecutionContext
from engine.errors import RunCancelled, UpstreamFailedError
from engine.result import OpResult
from engine.state import State

if TYPE_CHECKING:
    from engine.op import OpDefinition
    from engine.run import Run

logger = logging.getLogger(__name__)


class OpFuture:
    """A submitted op (``op.submit(...)``): wait for it, or pass it to another op.

    Attributes:
        step_key: the op invocation's key within the run.
    """

    def __init__(self, future: Future[State], step_key: str) -> None:
        self._future = future
        self.step_key = step_key

    def __repr__(self) -> str:
        return f"<OpFuture step_key={self.step_key!r} done={self._future.done()}>"

    def wait(self, timeout: float | None = None) -> State:
        """The op's final state, once it has one."""
        return self._future.result(timeout)

    @property
    def state(self) -> State:
        return self.wait()

    def result(self, timeout: float | None = None) -> Any:
        """The op's output; raises its exception if it did not complete."""
        return self.wait(timeout).result()


def new_op_info(run: Run, op: OpDefinition) -> OpInfo:
    """The ``OpInfo`` of a new invocation of ``op`` in ``run`` (step key, config)."""
    return OpInfo(
        name=op.name,
        step_key=run.next_step_key(op.name),
        max_attempts=op.retries + 1,
        config=run.config.op_wire.get(op.name, {}),
    )


def submit_op(
    run: Run, op: OpDefinition, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> OpFuture:
    """Publish ``op`` as pending and run it on the run's thread pool."""
    info = new_op_info(run, op)
    run.op_transition(info, None, OpState.PENDING, hooks=hooks_of(run, op))
    context = contextvars.copy_context()
    future = run.executor().submit(
        context.run, execute_op, run, op, args, kwargs, return_state=True, info=info
    )
    run.track(future)
    return OpFuture(future, info.step_key)


def hooks_of(run: Run, op: OpDefinition) -> tuple[HookRef, ...]:
    """The hooks on this invocation: the job's ``hooks={...}`` and the op's own."""
    return run.job.op_hook_refs + op.hook_refs


def execute_op(
    run: Run,
    op: OpDefinition,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    return_state: bool = False,
    info: OpInfo | None = None,
) -> Any:
    """Run one invocation of ``op``; return its output (or its ``State``).

    Raises:
        RunCancelled: the run was asked to stop before this op started.
        UpstreamFailedError: an input came from an op that did not complete (unless
            ``return_state``).
        Exception: whatever the op raised on its last attempt (unless ``return_state``).
    """
    from_state = None if info is None else OpState.PENDING
    info = info or new_op_info(run, op)
    hooks = hooks_of(run, op)
    args, kwargs, upstream = _resolve_inputs(args, kwargs)
    if upstream is not None or run.cancel_requested:
        state = _skip(run, info, hooks, from_state, upstream)
    else:
        state = _attempts(run, op, info, hooks, from_state, args, kwargs)
    run.ops[info.step_key] = OpResult(
        info.step_key, OpState(state.type), state.attempts, output=state.data, error=state.error
    )
    if return_state:
        return state
    return state.result()


def _skip(
    run: Run,
    info: OpInfo,
    hooks: tuple[HookRef, ...],
    from_state: OpState | None,
    upstream: State | None,
) -> State:
    if upstream is None:
        message = "skipped: the run was asked to stop"
        run.op_transition(info, from_state, OpState.SKIPPED, hooks=hooks, message=message)
        raise RunCancelled(message)
    message = f"skipped: input from op {upstream.step_key!r} is {upstream.type}"
    run.op_transition(info, from_state, OpState.SKIPPED, hooks=hooks, message=message)
    error = UpstreamFailedError(
        f"op {info.step_key!r} was skipped: its input from op {upstream.step_key!r} ended "
        f"{upstream.type}. Handle the upstream failure, or pass return_state=True to get "
        "states instead of exceptions."
    )
    return State(OpState.SKIPPED, message=message, exception=error, step_key=info.step_key)


def _attempts(
    run: Run,
    op: OpDefinition,
    info: OpInfo,
    hooks: tuple[HookRef, ...],
    from_state: OpState | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> State:
    attempt = 1
    while True:
        if info.attempt != attempt:
            info = info.model_copy(update={"attempt": attempt})
        run.op_transition(info, from_state, OpState.RUNNING, hooks=hooks)
        try:
            with run.interrupter.armed(op.interruptible):
                output = _call(run, op, info, args, kwargs)
        except RunCancelled as exc:
            run.op_transition(
                info, OpState.RUNNING, OpState.CANCELLED, hooks=hooks, message=str(exc)
            )
            raise
        except Exception as exc:
            error = ErrorInfo.from_exception(exc)
            message = f"{error.type}: {error.message}"
            if attempt >= info.max_attempts or run.cancel_requested:
                run.op_transition(info, OpState.RUNNING, OpState.FAILED, hooks=hooks, error=error)
                return State(
                    OpState.FAILED,
                    message=message,
                    error=error,
                    exception=exc,
                    step_key=info.step_key,
                    attempts=attempt,
                )
            run.op_transition(
                info, OpState.RUNNING, OpState.RETRYING, hooks=hooks, error=error, message=message
            )
            if run.wait_for_cancel(op.retry_delay_seconds):
                run.op_transition(info, OpState.RETRYING, OpState.CANCELLED, hooks=hooks)
                raise RunCancelled(
                    f"op {info.step_key!r} cancelled while waiting to retry"
                ) from exc
            from_state, attempt = OpState.RETRYING, attempt + 1
            continue
        # Outputs are redacted with the same keys as config: a returned token stays here.
        result = redact_output(output, run.settings.redact_keys)
        done = info.model_copy(update={"outputs": {"result": result}})
        run.op_transition(done, OpState.RUNNING, OpState.COMPLETED, hooks=hooks)
        return State(OpState.COMPLETED, data=output, step_key=info.step_key, attempts=attempt)


def _call(
    run: Run, op: OpDefinition, info: OpInfo, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if op.config_arg is not None:
        kwargs = {**kwargs, op.config_arg: run.config.op_values.get(op.name)}
    if op.takes_context:
        context = OpExecutionContext(
            run_id=run.run_id,
            job_name=run.job.name,
            op=info,
            op_config=run.config.op_values.get(op.name),
            resources=run.resources_for(op.required_resource_keys),
        )
        args = (context, *args)
    return op.fn(*args, **kwargs)


def _resolve_inputs(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any], State | None]:
    """Futures and states passed as inputs become their values; report a failed one."""
    failed: list[State] = []

    def value(item: Any) -> Any:
        state = item.wait() if isinstance(item, OpFuture) else item
        if not isinstance(state, State):
            return item
        if not state.is_completed():
            failed.append(state)
        return state.data

    resolved_args = tuple(value(item) for item in args)
    resolved_kwargs = {key: value(item) for key, item in kwargs.items()}
    return resolved_args, resolved_kwargs, failed[0] if failed else None
