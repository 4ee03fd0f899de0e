"""``Definitions``: an optional explicit list of what a code location offers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from engine.job import JobDefinition
from sensors.run_status import SensorDefinition


@dataclass(frozen=True, slots=True)
class Definitions:
    """Jobs, sensors and the resources sensors use, as Dagster's ``Definitions``.

    A code location module may define one; otherwise its module-level jobs, hooks and
    sensors are found by scanning it, and sensors get no resources.
    """

    jobs: Iterable[JobDefinition] = ()
    sensors: Iterable[SensorDefinition] = ()
    resources: Mapping[str, object] = field(default_factory=dict)
