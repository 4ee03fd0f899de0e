"""Errors of the worker side. Their part of the tree::

HookbusError (bus.errors)
├── ConfigError
│   └── CodeLocationError     the code location cannot be loaded or is inconsistent
└── SensorsError
    ├── HookNotFoundError     an event names a hook the loaded code location lacks
    ├── SensorNotFoundError   a command names a sensor that has no consumer group
    └── HookExecutionError    user code (hook, sensor, resource) raised; __cause__ is it
"""

from __future__ import annotations

from bus.errors import ConfigError, HookbusError


class CodeLocationError(ConfigError):
    """The code location module cannot be imported or defines something invalid."""


class SensorsError(HookbusError):
    """Something went wrong running hooks or sensors."""


class HookNotFoundError(SensorsError):
    """An event references a hook that is not in the worker's code location."""


class HookExecutionError(SensorsError):
    """A hook, sensor or resource factory raised.

    Attributes:
        handler: the handler's name (``hook:<ref>`` or ``sensor:<name>``).
        event_id: the event it was handling.
        attempt: which attempt of this handler it was (from 1).
    """

    def __init__(self, *, handler: str, event_id: str, attempt: int, cause: BaseException) -> None:
        super().__init__(
            f"handler {handler!r} failed on event {event_id!r} (attempt {attempt}): "
            f"{type(cause).__name__}: {cause}"
        )
        self.handler = handler
        self.event_id = event_id
        self.attempt = attempt


class SensorNotFoundError(SensorsError):
    """``hookbus sensors stop|start`` names a sensor no worker has ever run."""
