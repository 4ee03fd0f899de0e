"""Which events may wait to share a round trip, and which must reach the disk at once.

A failure, a retry, a cancel or a terminal state alerts someone or ends a run: it is sent
before the engine moves on, and spooled with fsync while Redis is away. The rest (an op
starting or completing, a run pending or running) may wait for the publisher's linger.
"""

from __future__ import annotations

from typing import Final

from bus.events import OpEvent, RunEvent
from bus.states import OpState, RunState

#: Events written to the spool with fsync: losing one of these would lose an alert.
_DURABLE_STATES: Final = frozenset(
    {OpState.FAILED, OpState.CRASHED, *(state for state in RunState if state.is_terminal)}
)
#: Events that may wait for the linger: they trigger no failure alert and end nothing.
_BATCHED_OP_STATES: Final = frozenset(
    {OpState.PENDING, OpState.RUNNING, OpState.COMPLETED, OpState.SKIPPED}
)
_BATCHED_RUN_STATES: Final = frozenset({RunState.PENDING, RunState.RUNNING})


def can_wait(event: RunEvent | OpEvent) -> bool:
    """Whether ``event`` may be sent with the next batch rather than at once."""
    if isinstance(event, OpEvent):
        return event.to_state in _BATCHED_OP_STATES
    return event.to_state in _BATCHED_RUN_STATES


def must_be_durable(event: RunEvent | OpEvent) -> bool:
    """Whether ``event`` is fsynced when it has to wait in the spool."""
    return event.to_state in _DURABLE_STATES
