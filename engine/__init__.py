"""Run jobs made of ops; publish every run and op transition to the bus.

The event path starts here: ``engine.run.Run.transition`` / ``Run.op_transition`` →
``bus.publisher.Publisher.publish`` (see ``bus`` for the rest).
"""

import typing

from bus import lazy
from engine.config import RunConfig
from engine.context import OpExecutionContext
from engine.errors import (
    DefinitionError,
    EngineError,
    RunCancelled,
    RunConfigError,
    RunFailedError,
    UpstreamFailedError,
)
from engine.job import GraphDefinition, JobDefinition, graph, job
from engine.op import OpDefinition, op
from engine.op_run import OpFuture
from engine.resources import ResourceDefinition, resource
from engine.result import OpResult, RunResult
from engine.state import State

if typing.TYPE_CHECKING:
    from engine.cancel import cancel_run
    from engine.run import Run
    from engine.settings import EngineSettings

__all__ = [
    "DefinitionError",
    "EngineError",
    "EngineSettings",
    "GraphDefinition",
    "JobDefinition",
    "OpDefinition",
    "OpExecutionContext",
    "OpFuture",
    "OpResult",
    "ResourceDefinition",
    "Run",
    "RunCancelled",
    "RunConfig",
    "RunConfigError",
    "RunFailedError",
    "RunResult",
    "State",
    "UpstreamFailedError",
    "cancel_run",
    "graph",
    "job",
    "op",
    "resource",
]

# What running a job needs (redis-py, the settings loader) is imported on first use
# (``bus.lazy``): a module that only defines jobs and ops must not pay for it.
_LAZY = {"EngineSettings": "engine.settings", "Run": "engine.run", "cancel_run": "engine.cancel"}
__getattr__, __dir__ = lazy.lazy_exports(__name__, _LAZY)
