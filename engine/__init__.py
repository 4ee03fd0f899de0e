"""Run jobs made of ops; publish every run and op transition to the bus.

The event path starts here: ``engine.run.Run.transition`` / ``Run.op_transition`` →
``bus.publisher.Publisher.publish`` (see ``bus`` for the rest).
"""

from engine.cancel import cancel_run
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
from engine.run import Run
from engine.settings import EngineSettings
from engine.state import State

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
