"""``Definitions``: an optional explicit list of what a code location offers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from engine.job import JobDefinition
from notifiers.rules import NotificationRule
from sensors.run_status import SensorDefinition


@dataclass(frozen=True, slots=True)
class Definitions:
    """Jobs, sensors, the resources sensors (and checks of jobs defined elsewhere) use, and
    notification rules.

    As Dagster's ``Definitions``, plus ``notification_rules`` (``notifiers.NotificationRule``).

    A code location module may define one; otherwise its module-level jobs, hooks and
    sensors are found by scanning it, and sensors get no resources.
    """

    jobs: Iterable[JobDefinition] = ()
    sensors: Iterable[SensorDefinition] = ()
    resources: Mapping[str, object] = field(default_factory=dict)
    notification_rules: Iterable[NotificationRule] = ()
