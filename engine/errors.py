"""Errors the engine raises. Its part of the tree::

HookbusError (bus.errors)
├── ConfigError
│   ├── DefinitionError     a job/op/hook/resource definition is wrong (raised at import)
│   └── RunConfigError      the run config does not fit the job (raised before the run)
└── EngineError
    ├── RunFailedError      execute_in_process(raise_on_error=True) on a failed run
    └── UpstreamFailedError an op was skipped because an op it depends on failed

BaseException
└── RunCancelled            raised at the next op boundary of a run asked to stop; a
                            BaseException so that ``except Exception`` in a job body
                            cannot swallow the cancel
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bus.errors import ConfigError, HookbusError

if TYPE_CHECKING:
    from engine.result import RunResult


class DefinitionError(ConfigError):
    """A job, op or hook attachment is invalid; fix the code location."""


class RunConfigError(ConfigError):
    """The run config names an unknown op or resource, or a value is invalid."""


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


class UpstreamFailedError(EngineError):
    """An op was skipped because an input came from an op that did not complete."""


class RunCancelled(BaseException):
    """The run was asked to stop (``hookbus runs cancel``); raised at an op boundary."""
