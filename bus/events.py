"""The wire format: every run and op state change as a versioned, validated JSON event.

An event carries everything a worker needs to build a hook's context without the engine:
the run (id, job, tags, parameters), the op (name, step key, attempt, config, a safe
summary of outputs), the error, and references to the hooks attached to that invocation.
Hooks are named by reference only (see ``HookRef``); nothing here is ever imported or
executed by a worker except through its own loaded code location.

Three kinds share the streams, told apart by ``type``: ``run`` and ``op`` (a state
change, published by the engine) and ``check`` (a time-based check saw something that did
*not* happen, published by a worker; ``CheckEvent``).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Final, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter, ValidationError

from bus.errors import EventValidationError
from bus.states import OpState, RunState
from bus.tracebacks import traceback_text

#: Version of the wire schema. Bump it (and keep reading the old one) on any change that an
#: older worker could not read.
SCHEMA_VERSION: Final = 1
#: An entry larger than this is refused by workers as poison (dead-lettered, not run).
MAX_EVENT_BYTES: Final = 256 * 1024
#: Tracebacks are cut to their last this-many characters: the tail names the failing line.
MAX_TRACEBACK_CHARS: Final = 16_000
#: Exception messages are cut to this many characters.
MAX_MESSAGE_CHARS: Final = 4_000
#: How many ``__cause__``/``__context__`` links of an exception are kept.
MAX_CAUSE_DEPTH: Final = 5

_WIRE = ConfigDict(frozen=True, extra="forbid")

#: An event id: letters, digits and ``_ . : -``, at most 128. It names Redis keys (the
#: ledger's, joined with NUL in one script argument) and webhook ids, so nothing else
#: may pass: an event with any other id is refused as poison (dead-lettered).
EventId = Annotated[str, Field(pattern=r"^[0-9A-Za-z_.:-]{1,128}$")]


#: Event ids drawn from the OS at a time (see ``new_event_id``).
_EVENT_ID_BATCH: Final = 256
_event_ids: list[str] = []
# A forked child must not hand out the ids its parent still holds.
os.register_at_fork(after_in_child=_event_ids.clear)


def new_event_id() -> str:
    """A fresh, globally unique event id (also the Standard Webhooks ``webhook-id``).

    128 random bits from ``os.urandom`` as 32 hex characters, like ``uuid4().hex`` but
    without building a ``UUID`` object. The engine makes one per transition, so they are
    drawn 256 at a time: ``os.urandom`` releases the GIL, and each release let the
    publisher's flusher thread in (measured: 6 µs per id instead of 0.6 µs).
    """
    try:
        return _event_ids.pop()  # list.pop is atomic: threads never get the same id
    except IndexError:
        raw = os.urandom(16 * _EVENT_ID_BATCH).hex()
        _event_ids.extend(raw[start : start + 32] for start in range(32, len(raw), 32))
        return raw[:32]


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC (every timestamp on the wire is)."""
    return datetime.now(UTC)


class ErrorInfo(BaseModel):
    """An exception as data: type, message, traceback text and the cause chain, size-capped."""

    model_config = _WIRE

    type: str
    message: str
    traceback: str = ""
    cause: ErrorInfo | None = None

    @classmethod
    def from_exception(cls, exc: BaseException, *, depth: int = 0) -> ErrorInfo:
        """Capture ``exc`` (and up to ``MAX_CAUSE_DEPTH`` causes) without keeping the object."""
        text = traceback_text(exc)
        linked = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        cause = None
        if linked is not None and depth < MAX_CAUSE_DEPTH:
            cause = cls.from_exception(linked, depth=depth + 1)
        return cls(
            type=type(exc).__qualname__,
            message=_cap(str(exc), MAX_MESSAGE_CHARS, keep="head"),
            traceback=_cap(text, MAX_TRACEBACK_CHARS, keep="tail"),
            cause=cause,
        )


def _cap(text: str, limit: int, *, keep: Literal["head", "tail"]) -> str:
    if len(text) <= limit:
        return text
    marker = f"…[{len(text) - limit} characters cut]…"
    return marker + text[-limit:] if keep == "tail" else text[:limit] + marker


class HookRef(BaseModel):
    """A hook attached to an invocation, named by reference within the code location.

    Attributes:
        ref: the key under which the worker's loaded code location registers the hook
            (``"module:qualname"`` of its function). Never imported by the worker.
        name: the display name (a Dagster hook's ``name``, else the function's name).
        style: ``"context"`` for Dagster-style ``fn(context)``, ``"state"`` for
            Prefect-style ``fn(job_or_op, run, state, **kwargs)``.
        on: the target states (run or op states) that trigger it.
        hook_kwargs: JSON keyword arguments bound with ``functools.partial``.
    """

    model_config = _WIRE

    ref: str
    name: str
    style: Literal["context", "state"]
    on: tuple[str, ...]
    hook_kwargs: dict[str, JsonValue] = Field(default_factory=dict)


class RunInfo(BaseModel):
    """The run an event belongs to: what a Prefect-style ``flow_run`` offers."""

    model_config = _WIRE

    run_id: str
    run_name: str
    job_name: str
    tags: dict[str, str] = Field(default_factory=dict)
    parameters: dict[str, JsonValue] = Field(default_factory=dict)
    started_at: datetime | None = None
    attempt: int = 1
    #: The run config's ``resources:`` section, redacted (``{"env": NAME}`` references
    #: are kept: the worker resolves them in its own environment, if its code location
    #: declares ``NAME``; ``engine.resources.wire_config``).
    resource_config: dict[str, dict[str, JsonValue]] = Field(default_factory=dict)


class OpInfo(BaseModel):
    """The op invocation an op event is about."""

    model_config = _WIRE

    name: str
    step_key: str
    attempt: int = 1
    max_attempts: int = 1
    config: dict[str, JsonValue] = Field(default_factory=dict)
    #: JSON-safe outputs; values that are not JSON or too big are summarised as
    #: ``{"type": ..., "repr": ...}``.
    outputs: dict[str, JsonValue] = Field(default_factory=dict)


class CrashInfo(BaseModel):
    """How a crashed run's process ended, on crash events.

    Attributes:
        reason: ``"signal"`` (killed: SIGKILL, OOM killer, segfault), ``"exit"`` (exited
            without a terminal event), ``"exception"`` (``SystemExit``,
            ``KeyboardInterrupt``, SIGTERM inside the run) or ``"heartbeat_lost"`` (its
            machine or container is gone; seen by a worker).
        signal: the signal's name, e.g. ``"SIGKILL"``.
        exit_code: the process's exit status (negative: killed by that signal number).
        pid: the job process's pid.
        host: the machine it ran on.
        detected_by: who published the crash: ``"supervisor"``, ``"engine"`` or
            ``"worker:<consumer>"``.
    """

    model_config = _WIRE

    reason: Literal["signal", "exit", "exception", "heartbeat_lost"]
    signal: str | None = None
    exit_code: int | None = None
    pid: int | None = None
    host: str | None = None
    detected_by: str = "engine"


class _EventBase(BaseModel):
    model_config = _WIRE

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: EventId = Field(default_factory=new_event_id)
    #: Position of this event within its run, from 1 with no gaps: a worker can see a gap.
    seq: int = Field(ge=1)
    occurred_at: datetime = Field(default_factory=utc_now)
    run: RunInfo
    hooks: tuple[HookRef, ...] = ()
    error: ErrorInfo | None = None
    message: str = ""
    #: On crashed events: how the process ended and who saw it.
    crash: CrashInfo | None = None

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def job_name(self) -> str:
        return self.run.job_name

    def hooks_triggered(self) -> tuple[HookRef, ...]:
        """The attached hooks whose target states include this event's new state."""
        to_state: str = getattr(self, "to_state")  # noqa: B009 - both subclasses define it
        return tuple([hook for hook in self.hooks if to_state in hook.on])  # no generator


class RunEvent(_EventBase):
    """A run moved from one state to another."""

    type: Literal["run"] = "run"
    from_state: RunState | None
    to_state: RunState

    def __repr__(self) -> str:
        return (
            f"<RunEvent run_id={self.run_id!r} job={self.job_name!r} seq={self.seq} "
            f"{self.from_state} -> {self.to_state}>"
        )


class OpEvent(_EventBase):
    """An op invocation moved from one state to another."""

    type: Literal["op"] = "op"
    op: OpInfo
    from_state: OpState | None
    to_state: OpState

    def __repr__(self) -> str:
        return (
            f"<OpEvent run_id={self.run_id!r} job={self.job_name!r} seq={self.seq} "
            f"step_key={self.op.step_key!r} attempt={self.op.attempt} "
            f"{self.from_state} -> {self.to_state}>"
        )


class CheckKind(StrEnum):
    """What a time-based check looks for (``sensors.checks``)."""

    #: A run still in one state (running, or pending) after ``within_s`` (the limit).
    RUN_STUCK = "run_stuck"
    #: No successful run of the job within ``within_s`` (the window).
    NOT_FRESH = "not_fresh"
    #: ``failures`` or more failed runs of the job within ``within_s`` (the window).
    FAILURE_COUNT = "failure_count"


class CheckEvent(BaseModel):
    """A time-based check fired: something did not happen in time.

    Published by the worker that evaluates the checks (``bus.checks``), once per occurrence,
    on the stream of the run (stuck runs) or the job; workers run the check's own function
    for it in the ``hooks`` group, and notification rules may alert on it. It belongs to no
    run's sequence, so it has no ``seq``.

    Attributes:
        event_id: derived from (check, subject, occurrence) (``bus.checks.check_event_id``),
            so a copy of the same occurrence is recognised by the ledger and the alerts.
        occurred_at: when the check fired (the evaluation's time).
        check_name: the check's name in its code location (its function is found by this
            name, never imported).
        kind: what it looks for.
        job_name: the job concerned.
        message: one line saying what was seen, for logs and plain-text alerts.
        within_s: the check's limit (stuck runs) or window (the others), in seconds.
        run: the stuck run (``RUN_STUCK`` only).
        run_state: the state the run is stuck in (``RUN_STUCK`` only).
        state_since: when the run entered that state (``RUN_STUCK`` only).
        count: how many failures were seen (``FAILURE_COUNT``; else 0).
        failures: how many failures make the check fire (``FAILURE_COUNT``; else ``None``).
        failed_run_ids: the newest few of the failed runs counted, newest first
            (``FAILURE_COUNT``).
        failed_run_names: those runs' names, in the same order (what people recognise;
            empty from a worker older than this field).
        last_error: the newest counted failure's error message, if its event had one
            (``FAILURE_COUNT``).
        last_success_at: when the job last completed successfully, if the check history
            knows (``NOT_FRESH``).
        last_success_run_id: that run's id (``NOT_FRESH``).
        last_success_run_name: that run's name (``NOT_FRESH``).
        watching_since: when the check began watching the job (``NOT_FRESH``: its window
            counts from the later of this and the last success).
    """

    model_config = _WIRE

    type: Literal["check"] = "check"
    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: EventId = Field(default_factory=new_event_id)
    occurred_at: datetime = Field(default_factory=utc_now)
    check_name: str
    kind: CheckKind
    job_name: str
    message: str
    within_s: float = Field(ge=0)
    run: RunInfo | None = None
    run_state: RunState | None = None
    state_since: datetime | None = None
    count: int = Field(default=0, ge=0)
    failures: int | None = Field(default=None, ge=1)
    failed_run_ids: tuple[str, ...] = ()
    failed_run_names: tuple[str, ...] = ()
    last_error: str | None = None
    last_success_at: datetime | None = None
    last_success_run_id: str | None = None
    last_success_run_name: str | None = None
    watching_since: datetime | None = None

    @property
    def run_id(self) -> str | None:
        """The stuck run's id, or ``None`` for a job-level check."""
        return None if self.run is None else self.run.run_id

    def __repr__(self) -> str:
        run = f" run_id={self.run_id!r}" if self.run is not None else ""
        return f"<CheckEvent check={self.check_name!r} kind={self.kind} job={self.job_name!r}{run}>"


#: Any event on the bus.
BusEvent: TypeAlias = RunEvent | OpEvent | CheckEvent
#: The wire union, discriminated on ``type`` (for pydantic models that embed events).
Event = Annotated[BusEvent, Field(discriminator="type")]
_EVENT_ADAPTER: TypeAdapter[BusEvent] = TypeAdapter(Event)
_EVENT_VALIDATOR: Final = _EVENT_ADAPTER.validator  # without validate_json's wrapper (0.5 µs)


def event_state(event: BusEvent) -> str:
    """What an event says happened, for log lines: the new state, or ``check:<kind>``."""
    return f"check:{event.kind}" if isinstance(event, CheckEvent) else str(event.to_state)


def encode_event(event: BusEvent) -> bytes:
    """Serialise an event to its JSON wire form."""
    # The bytes of ``model_dump_json().encode()``, without the detour through ``str``.
    return event.__pydantic_serializer__.to_json(event)


def decode_event(raw: bytes | str) -> BusEvent:
    """Parse and validate one wire event.

    Raises:
        EventValidationError: with reason ``oversized``, ``unknown_schema_version``,
            ``invalid_json`` or ``schema``, naming the offending field.
    """
    if len(raw) > MAX_EVENT_BYTES:
        raise EventValidationError(
            "oversized", f"entry is {len(raw)} bytes, the limit is {MAX_EVENT_BYTES}"
        )
    try:
        return _EVENT_VALIDATOR.validate_json(raw)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise _classify(exc) from exc


def _classify(exc: ValidationError) -> EventValidationError:
    first = exc.errors()[0]
    # A discriminated union puts the tag ("run"/"op"/"check") first in the location; drop it.
    loc = first["loc"][1:] if len(first["loc"]) > 1 else first["loc"]
    where = ".".join(str(part) for part in loc) or "<root>"
    if first["type"] == "json_invalid":
        return EventValidationError("invalid_json", first["msg"])
    if where.endswith("schema_version"):
        return EventValidationError(
            "unknown_schema_version",
            f"schema_version {first.get('input')!r} is not supported by this worker "
            f"(it reads {SCHEMA_VERSION}); upgrade the worker",
        )
    return EventValidationError("schema", f"{where}: {first['msg']}")
