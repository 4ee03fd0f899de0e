"""One execution of a job: its state machine, and every transition published as an event.

``Run.transition`` and ``Run.op_transition`` are the only places events are made. Each
publishes one event with the run's next ``seq`` and, in the same round trip, the run's
crash-contract record (``bus.runs``): the ops running now, the last ``seq``, the state.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from pydantic import JsonValue

from bus.events import CrashInfo, ErrorInfo, HookRef, OpEvent, OpInfo, RunEvent, RunInfo, utc_now
from bus.publisher import Publisher
from bus.runs import RunningOp, RunRecord
from bus.states import OpState, RunState
from bus.types import ResourceFactory, ResourceInitContext
from engine.config import ResolvedConfig
from engine.errors import RunCancelled
from engine.heartbeat import Heartbeat
from engine.interrupt import Interrupter
from engine.result import OpResult, RunResult
from engine.run_context import enter_run, leave_run
from engine.settings import EngineSettings

if TYPE_CHECKING:
    from engine.job import JobDefinition

logger = logging.getLogger(__name__)

_HOST = socket.gethostname()
#: How long a run's body waits at most for the publisher's connection to Redis, in
#: seconds (``Publisher.wait_connected``); usually under a millisecond.
CONNECT_WAIT_S = 0.1


class Run:
    """Executes a job body and publishes each run and op transition, in order.

    Args:
        job: what to run.
        publisher: where events go (never raises).
        settings: heartbeat timing.
        run_id: the run's id (default: a new one).
        tags: extra tags on top of the job's.
        parameters: the body's arguments, JSON-safe (``flow_run.parameters``).
        config: the checked run config (``engine.config.resolve_run_config``).
        env: the environment resources resolve ``EnvVar``s from.
    """

    def __init__(
        self,
        job: JobDefinition,
        *,
        publisher: Publisher,
        settings: EngineSettings | None = None,
        run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        parameters: Mapping[str, JsonValue] | None = None,
        config: ResolvedConfig | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.job = job
        self.settings = settings or EngineSettings()
        self.publisher = publisher
        run_id = run_id or new_run_id()
        self.info = RunInfo(
            run_id=run_id,
            run_name=f"{job.name}-{run_id[:8]}",
            job_name=job.name,
            tags={**job.tags, **(tags or {})},
            parameters=dict(parameters or {}),
            resource_config=dict(config.resource_wire) if config else {},
        )
        self.config = config or ResolvedConfig()
        self._env: Mapping[str, str] = env or {}
        self._resources: dict[str, Any] = {}
        self.state = RunState.PENDING
        self._seq = 0
        #: When the run entered ``state`` (written into its record for the stuck-run check).
        self._state_since: datetime | None = None
        # One lock orders sequence numbers and publishes, so concurrent ops stay in order.
        self._lock = threading.RLock()
        self._step_counts: Counter[str] = Counter()
        self._running: dict[str, RunningOp] = {}
        self._cancel = threading.Event()
        self.interrupter = Interrupter()
        self._futures: list[Future[Any]] = []
        self._executor: ThreadPoolExecutor | None = None
        self.ops: dict[str, OpResult] = {}

    def __repr__(self) -> str:
        return f"<Run run_id={self.info.run_id!r} job={self.job.name!r} state={self.state}>"

    @property
    def run_id(self) -> str:
        return self.info.run_id

    def execute(self, *args: Any, **kwargs: Any) -> RunResult:
        """Run the job body to its end and return the result.

        ``SystemExit``, ``KeyboardInterrupt`` and SIGTERM (in the main thread) end the run
        as crashed (the running ops too) and are re-raised.
        """
        self.transition(RunState.PENDING)
        heartbeat = Heartbeat(
            self.publisher,
            keys=self.settings.keys,
            run_id=self.run_id,
            interval_s=self.settings.heartbeat_interval_s,
            timeout_s=self.settings.heartbeat_timeout_s,
            on_cancel=self.request_cancel,
        )
        heartbeat.start()
        try:
            with _sigterm_as_exception():
                return self._attempts(args, kwargs)
        except BaseException as exc:
            self._crash(exc)
            raise
        finally:
            heartbeat.stop()
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
            self.publisher.close()

    def request_cancel(self, reason: str = "cancel requested") -> None:
        """Ask the run to stop at the next op boundary (at once inside an interruptible
        op); publishes ``cancelling`` once."""
        with self._lock:
            if self._cancel.is_set() or self.state.is_terminal:
                return
            self._cancel.set()
            self.transition(RunState.CANCELLING, message=reason)
        self.interrupter.interrupt()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def wait_for_cancel(self, delay_s: float) -> bool:
        """Sleep ``delay_s`` (a retry delay); return early, ``True``, on a cancel request."""
        return self._cancel.wait(delay_s)

    def resources_for(self, keys: frozenset[str]) -> SimpleNamespace:
        """The resources an op asked for, built once per run from ``resource_defs``."""
        with self._lock:
            for key in sorted(keys - set(self._resources)):
                definition = self.job.resource_defs[key]
                if isinstance(definition, ResourceFactory):
                    context = ResourceInitContext(
                        config=self.config.resource_configs.get(key, {}), env=self._env
                    )
                    definition = definition.create_resource(context)
                self._resources[key] = definition
            return SimpleNamespace(**{key: self._resources[key] for key in keys})

    def _attempts(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> RunResult:
        attempt = 1
        while True:
            self.info = self.info.model_copy(update={"attempt": attempt, "started_at": utc_now()})
            self.transition(RunState.RUNNING)
            # User code starts once the bus is reachable, so a failure at once goes out
            # without waiting for the connection (never long: Redis may be away).
            self.publisher.wait_connected(CONNECT_WAIT_S)
            try:
                output = self._call_body(args, kwargs)
            except RunCancelled:
                return self._finish_cancelled()
            except Exception as exc:
                error = ErrorInfo.from_exception(exc)
                if attempt > self.job.retries or self._cancel.is_set():
                    self.transition(RunState.FAILED, error=error)
                    return self._result(error=error, exception=exc)
                self.transition(RunState.RETRYING, error=error, message=_retry_message(error))
                if self._cancel.wait(self.job.retry_delay_seconds):
                    return self._finish_cancelled()
                attempt += 1
                continue
            self.transition(RunState.COMPLETED)
            return self._result(output=output)

    def _call_body(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self._step_counts.clear()
        token = enter_run(self)
        try:
            output = self.job.fn(*args, **kwargs)
            for future in list(self._futures):  # submitted ops finish before the run does
                future.exception()
            return output
        finally:
            leave_run(token)

    def _finish_cancelled(self) -> RunResult:
        if self.state is not RunState.CANCELLING:
            self.transition(RunState.CANCELLING)
        self.transition(RunState.CANCELLED)
        return self._result()

    def _crash(self, exc: BaseException) -> None:
        error = ErrorInfo.from_exception(exc)
        crash = CrashInfo(
            reason="exception",
            signal=type(exc).__name__ if not isinstance(exc, _Terminated) else "SIGTERM",
            pid=os.getpid(),
            host=_HOST,
            detected_by="engine",
        )
        with self._lock:
            for running in list(self._running.values()):
                self.op_transition(
                    running.op,
                    running.state,
                    OpState.CRASHED,
                    hooks=running.hooks,
                    error=error,
                    crash=crash,
                )
            self.transition(RunState.CRASHED, error=error, crash=crash)

    def executor(self) -> ThreadPoolExecutor:
        """The run's thread pool for ``op.submit`` (``@job(max_concurrency=N)``)."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.job.max_concurrency, thread_name_prefix=f"hookbus-op-{self.run_id[:8]}"
                )
            return self._executor

    def track(self, future: Future[Any]) -> None:
        """Remember a submitted op, so the run waits for it before it ends."""
        with self._lock:
            self._futures.append(future)

    def transition(
        self,
        to_state: RunState,
        *,
        error: ErrorInfo | None = None,
        message: str = "",
        crash: CrashInfo | None = None,
    ) -> None:
        """Move the run to ``to_state`` and publish the run event."""
        with self._lock:
            from_state = None if self._seq == 0 else self.state
            self.state = to_state
            self._seq += 1
            self._state_since = utc_now()
            event = RunEvent(
                occurred_at=self._state_since,
                seq=self._seq,
                run=self.info,
                hooks=self.job.run_hook_refs,
                error=error,
                message=message,
                crash=crash,
                from_state=from_state,
                to_state=to_state,
            )
            self.publisher.publish(event, record=self._record())
        logger.info("run_id=%s job=%s state=%s", self.run_id, self.job.name, to_state)

    def op_transition(
        self,
        op: OpInfo,
        from_state: OpState | None,
        to_state: OpState,
        *,
        hooks: tuple[HookRef, ...],
        error: ErrorInfo | None = None,
        message: str = "",
        crash: CrashInfo | None = None,
    ) -> None:
        """Publish an op event for ``op`` moving ``from_state`` → ``to_state``."""
        with self._lock:
            if to_state.is_terminal:
                self._running.pop(op.step_key, None)
            else:
                self._running[op.step_key] = RunningOp(op=op, state=to_state, hooks=hooks)
            self._seq += 1
            event = OpEvent(
                seq=self._seq,
                run=self.info,
                op=op,
                hooks=hooks,
                error=error,
                message=message,
                crash=crash,
                from_state=from_state,
                to_state=to_state,
            )
            self.publisher.publish(event, record=self._record())
        logger.info(
            "run_id=%s op=%s attempt=%d state=%s", self.run_id, op.step_key, op.attempt, to_state
        )

    def _record(self) -> Callable[[], RunRecord]:
        # A snapshot of the record as of this event, built only if the publisher writes it
        # (once per round trip, not once per event).
        return functools.partial(
            RunRecord,
            run=self.info,
            seq=self._seq,
            state=self.state,
            state_since=self._state_since,
            hooks=self.job.run_hook_refs,
            running=dict(self._running),
            pid=os.getpid(),
            host=_HOST,
        )

    def next_step_key(self, op_name: str) -> str:
        """``name`` for the first invocation of an op in an attempt, then ``name_2`` …"""
        with self._lock:
            self._step_counts[op_name] += 1
            count = self._step_counts[op_name]
        return op_name if count == 1 else f"{op_name}_{count}"

    def _result(
        self,
        *,
        output: Any = None,
        error: ErrorInfo | None = None,
        exception: BaseException | None = None,
    ) -> RunResult:
        return RunResult(
            run_id=self.run_id,
            job_name=self.job.name,
            state=self.state,
            ops=dict(self.ops),
            output=output,
            error=error,
            exception=exception,
        )


def new_run_id() -> str:
    """A fresh run id (32 hex characters)."""
    return uuid.uuid4().hex


def _retry_message(error: ErrorInfo) -> str:
    return f"attempt failed ({error.type}: {error.message}); retrying"


class _Terminated(SystemExit):
    """SIGTERM, raised in the main thread so the run ends as crashed with the signal."""


@contextlib.contextmanager
def _sigterm_as_exception() -> Iterator[None]:
    """Turn SIGTERM into ``_Terminated`` while the run executes (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated(128 + signum)
