"""Run jobs made of ops; publish every run and op transition to the bus.

The event path starts here: ``engine.run.Run.transition`` / ``Run.op_transition`` →
``bus.publisher.Publisher.publish`` (see ``bus`` for the rest).
"""

from engine.errors import DefinitionError, EngineError, RunFailedError
from engine.job import JobDefinition, job
from engine.op import OpDefinition, op
from engine.result import OpResult, RunResult
from engine.run import Run
from engine.settings import EngineSettings

__all__ = [
    "DefinitionError",
    "EngineError",
    "EngineSettings",
    "JobDefinition",
    "OpDefinition",
    "OpResult",
    "Run",
    "RunFailedError",
    "RunResult",
    "job",
    "op",
]
