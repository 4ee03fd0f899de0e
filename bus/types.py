"""Protocols for objects users hand to hookbus, shared by the engine and the workers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import JsonValue

if TYPE_CHECKING:
    from bus.settings import BusSettings


@dataclass(frozen=True, slots=True)
class ResourceInitContext:
    """What a resource factory gets when a process builds the resource.

    Attributes:
        config: the resource's config (``.configured(...)`` merged with run config).
        env: the process environment captured once at startup, for ``EnvVar`` values.
        settings: the process's settings (a worker's ``WorkerSettings``), loaded once at
            startup; ``None`` when built outside a hookbus process (tests).
    """

    config: Mapping[str, JsonValue] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    settings: BusSettings | None = None

    @property
    def resource_config(self) -> Mapping[str, JsonValue]:
        """The config, under Dagster's name (``init_context.resource_config["token"]``)."""
        return self.config


@runtime_checkable
class ResourceFactory(Protocol):
    """Anything in ``resource_defs`` that builds its value per process.

    Values in ``resource_defs`` that are not factories are used as they are.
    """

    def create_resource(self, context: ResourceInitContext) -> Any: ...
