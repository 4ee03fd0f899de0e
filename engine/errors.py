"""Errors the engine raises. Its part of the tree::

HookbusError (bus.errors)
├── ConfigError
│   └── DefinitionError     a job/op/hook definition is wrong (raised at import)
└── EngineError
    └── RunFailedError      execute_in_process(raise_on_error=True) on a failed run
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bus.errors import ConfigError, HookbusError

if TYPE_CHECKING:
    from engine.result import RunResult


class DefinitionError(ConfigError):
    """A job, op or hook attachment is invalid; fix the code location."""


class EngineError(HookbusError):
    """Something went wrong while running a job."""


class RunFailedError(EngineError):
    """The run did not complete; ``result`` has the states, ``__cause__`` the exception."""

    def __init__(self, result: RunResult) -> None:
        error = result.error
        detail = f"{error.type}: {error.message}" if error else "no error captured"
        super().__init__(
            f"run {result.run_id!r} of job {result.job_name!r} ended {result.state}: {detail}. "
            "Pass raise_on_error=False to get the result instead."
        )
        self.result = result
