"""Notification rules as handlers: one per (rule, destination) for each event a rule follows.

Each destination of a rule is its own handler (``rule:<rule>:<destination>``), so the
ledger records each delivery on its own: when Slack is down and a webhook is up, a retry
sends to Slack only. The work itself is ``notifiers.alerting.Alerting.handle``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bus.events import OpEvent, RunEvent
from notifiers.alerting import Alerting
from notifiers.destinations import Destination
from notifiers.rules import NotificationRule
from sensors.handlers import ArgsBuilder, Handler


def rule_handlers(
    alerting: Alerting, rule: NotificationRule, event: RunEvent | OpEvent
) -> list[Handler]:
    """The handlers ``rule`` runs for ``event``: one per destination, or none."""
    if not rule.follows(event):
        return []
    return [
        Handler(
            name=f"rule:{rule.name}:{destination.name}",
            fn=alerting.handle,
            build_args=_arguments(rule, destination, event),
        )
        for destination in rule.destinations
    ]


def _arguments(
    rule: NotificationRule, destination: Destination, event: RunEvent | OpEvent
) -> ArgsBuilder:
    def build(_resources: Mapping[str, Any]) -> tuple[Any, ...]:
        return (rule, destination, event)

    return build
