"""``HookContext``: what a Dagster-style hook sees, rebuilt in the worker from one event."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from pydantic import JsonValue

from bus.events import ErrorInfo, OpEvent, OpInfo, RunInfo
from sensors.hooks import HookDefinition


class OpException(Exception):
    """The exception an op raised, rebuilt in the worker from the event.

    The original object never leaves the job's process; this keeps what a hook needs.

    Attributes:
        type_name: the original exception's class name, e.g. ``"ValueError"``.
        message: its message (``str(exc)``).
        traceback_text: the formatted traceback, tail-capped.
        error: the full ``ErrorInfo``, including the cause chain.
    """

    def __init__(self, error: ErrorInfo) -> None:
        super().__init__(error.message)
        self.type_name = error.type
        self.message = error.message
        self.traceback_text = error.traceback
        self.error = error

    def __repr__(self) -> str:
        return f"OpException({self.type_name}: {self.message!r})"

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}"


# Not frozen: one is made per hook call, and a frozen dataclass sets each of its fields
# through ``object.__setattr__``: 26.5k instructions a context against 7k (callgrind), a
# tenth of a worker's cost per event with a no-op hook.
@dataclass(slots=True)
class HookContext:
    """The context passed to a ``@success_hook`` / ``@failure_hook`` function.

    Attributes:
        job_name: the job the op ran in.
        run_id: the run's id.
        op: the op invocation (``op.name``, ``op.step_key``, ``op.attempt`` …).
        step_key: the op invocation's key within the run.
        op_config: the op's config.
        op_exception: the op's exception (``None`` on success).
        op_output_values: the op's outputs, as JSON or summaries.
        resources: the resources named in ``required_resource_keys``.
        hook_def: the hook being run.
        log: a logger for the hook.
        event: the event that triggered the hook.
    """

    job_name: str
    run_id: str
    op: OpInfo
    hook_def: HookDefinition | None = None
    op_exception: BaseException | None = None
    op_output_values: Mapping[str, JsonValue] = field(default_factory=dict)
    resources: Any = field(default_factory=SimpleNamespace)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("hookbus.hooks"))
    event: OpEvent | None = None
    run: RunInfo | None = None

    @property
    def step_key(self) -> str:
        return self.op.step_key

    @property
    def op_config(self) -> Mapping[str, JsonValue]:
        return self.op.config

    @property
    def required_resource_keys(self) -> frozenset[str]:
        return self.hook_def.required_resource_keys if self.hook_def else frozenset()

    def __repr__(self) -> str:
        return (
            f"<HookContext job={self.job_name!r} run_id={self.run_id!r} "
            f"step_key={self.step_key!r} hook={self.hook_def.name if self.hook_def else None!r}>"
        )


@functools.cache
def _hook_logger(name: str) -> logging.Logger:
    # Cached: ``getLogger`` takes logging's module lock, paid per hook call otherwise.
    return logging.getLogger(f"hookbus.hooks.{name}")


def hook_context_from_event(
    event: OpEvent, *, hook_def: HookDefinition, resources: Mapping[str, Any]
) -> HookContext:
    """The context a worker passes to ``hook_def`` for ``event``."""
    # Each attribute read once, and the fields passed by position: reading a pydantic
    # model's attribute is several times slower than a plain object's (its ``__getattr__``
    # keeps Python from specialising the lookup), and this runs for every hook call.
    run, op, error = event.run, event.op, event.error
    return HookContext(
        run.job_name,
        run.run_id,
        op,
        hook_def,
        OpException(error) if error else None,
        op.outputs,
        SimpleNamespace(**resources),
        _hook_logger(hook_def.name),
        event,
        run,
    )


def build_hook_context(
    *,
    resources: Mapping[str, Any] | None = None,
    op: OpInfo | str | None = None,
    run_id: str = "test-run",
    job_name: str = "test_job",
    op_exception: BaseException | None = None,
    op_output_values: Mapping[str, JsonValue] | None = None,
    op_config: Mapping[str, JsonValue] | None = None,
    hook_def: HookDefinition | None = None,
) -> HookContext:
    """A ``HookContext`` for unit-testing a hook without a worker or Redis.

    Example:
        ``my_hook(build_hook_context(resources={"slack": fake}, op="extract"))``
    """
    if not isinstance(op, OpInfo):
        name = op or "test_op"
        op = OpInfo(name=name, step_key=name, config=dict(op_config or {}))
    return HookContext(
        job_name=job_name,
        run_id=run_id,
        op=op,
        hook_def=hook_def,
        op_exception=op_exception,
        op_output_values=dict(op_output_values or {}),
        resources=SimpleNamespace(**(resources or {})),
    )
