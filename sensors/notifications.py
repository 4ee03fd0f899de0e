"""Notification rules as handlers: one per (rule, destination) for each event a rule follows.

Each destination of a rule is its own handler (``rule:<rule>:<destination>``), so the
ledger records each delivery on its own: when Slack is down and a webhook is up, a retry
sends to Slack only. The work itself is ``notifiers.alerting.Alerting.handle``, or
``Alerting.handle_check`` for a time-based check's event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bus.events import BusEvent, CheckEvent
from notifiers.alerting import Alerting
from notifiers.destinations import Destination
from notifiers.rules import NotificationRule
from sensors.handlers import ArgsBuilder, Handler


def rule_handlers(alerting: Alerting, rule: NotificationRule, event: BusEvent) -> list[Handler]:
    """The handlers ``rule`` runs for ``event``: one per destination, or none."""
    if not rule.follows(event):
        return []
    handle = alerting.handle_check if isinstance(event, CheckEvent) else alerting.handle
    return [
        Handler(
            name=f"rule:{rule.name}:{destination.name}",
            fn=handle,
            build_args=_arguments(rule, destination, event),
        )
        for destination in rule.destinations
    ]


def _arguments(rule: NotificationRule, destination: Destination, event: BusEvent) -> ArgsBuilder:
    def build(_resources: Mapping[str, Any]) -> tuple[Any, ...]:
        return (rule, destination, event)

    return build
