"""A code location with a notification rule to Slack (the tests point Slack at a stand-in)."""

from __future__ import annotations

from notifiers import NotificationRule, SlackChannel

oncall = NotificationRule(
    name="oncall",
    jobs=["nightly_etl"],
    destinations=[SlackChannel("#data-alerts")],
    group_window_s=1.5,
)
