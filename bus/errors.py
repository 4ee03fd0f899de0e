"""The root of every hookbus error, and the bus's own errors.

Every package subclasses ``HookbusError`` in its own ``errors.py``; this module sits at the
bottom of the dependency graph so that all of them can. The bus's part of the tree::

    HookbusError
    ├── ConfigError            bad settings or definitions, raised at startup
    └── BusError
        ├── EventValidationError   an entry that is not a valid event (goes to dead letters)
        └── BusUnavailableError    Redis did not answer (transient: retry)
"""

from __future__ import annotations


class HookbusError(Exception):
    """Base class of every error hookbus raises on purpose."""


class ConfigError(HookbusError):
    """Settings or definitions are invalid; fix them and start again."""


class BusError(HookbusError):
    """Something went wrong on the wire between the engine and the workers."""


class EventValidationError(BusError):
    """A stream entry is not a valid hookbus event.

    Args:
        reason: a short machine-friendly reason (``invalid_json``, ``schema``,
            ``unknown_schema_version``, ``oversized``).
        detail: the human explanation, naming the offending field where known.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"invalid event ({reason}): {detail}")
        self.reason = reason
        self.detail = detail


class BusUnavailableError(BusError):
    """Redis did not answer; the caller retries with backoff."""
