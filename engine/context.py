"""``OpExecutionContext``: what an op that takes a ``context`` argument receives."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from bus.events import OpInfo


@dataclass(frozen=True, slots=True)
class OpExecutionContext:
    """The context of one op attempt, as Dagster's: ``context.op_config``, ``resources``.

    Attributes:
        run_id: the run's id.
        job_name: the job.
        op: the invocation (``op.name``, ``op.step_key``, ``op.attempt`` …).
        op_config: the op's validated config (a pydantic model, a dict, or ``None``).
        resources: the resources in the op's ``required_resource_keys``.
        log: a logger for the op.
    """

    run_id: str
    job_name: str
    op: OpInfo
    op_config: Any = None
    resources: Any = field(default_factory=SimpleNamespace)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("hookbus.ops"))

    @property
    def step_key(self) -> str:
        return self.op.step_key

    @property
    def retry_number(self) -> int:
        """Zero for the first attempt (Dagster's name)."""
        return self.op.attempt - 1

    def __repr__(self) -> str:
        return (
            f"<OpExecutionContext run_id={self.run_id!r} step_key={self.step_key!r} "
            f"attempt={self.op.attempt}>"
        )
