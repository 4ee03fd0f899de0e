"""The order in which a notification rule's group starts the handlers of one read batch.

A rule's alerts of one run race for the run's grouping window: the first to join leads,
and becomes the run's first Slack message. Started in waves, the run's first failure leads,
its later failures are collected into its thread, and its end comes last.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bus.events import CheckEvent, RunEvent
from sensors.handlers import Handler

if TYPE_CHECKING:
    from sensors.work import Work


def run_waves(todo: list[tuple[Work, Handler]]) -> list[list[tuple[Work, Handler]]]:
    """``todo`` in up to three waves, for a notification rule's group: each run's first
    event of the batch; then the run's later events; then the run's end (its final state),
    when the batch holds earlier events of that run. Events without a run go first.

    Started together, the alerts of one run race for the run's grouping window, and the
    one that joins first leads: the run's first message. So the run's first failure leads,
    the failures after it are collected into its thread, and the end comes last (with
    fewer round trips before it joins, it would otherwise often win). Other runs do not
    wait for each other.
    """
    waves: list[list[tuple[Work, Handler]]] = [[], [], []]
    first_work: dict[str, Work] = {}
    for work, handler in todo:
        event = work.event
        if isinstance(event, CheckEvent):
            waves[0].append((work, handler))
            continue
        leader = first_work.setdefault(event.run_id, work)
        if leader is work:
            waves[0].append((work, handler))  # every handler of the run's first event
        elif isinstance(event, RunEvent) and event.to_state.is_terminal:
            waves[2].append((work, handler))
        else:
            waves[1].append((work, handler))
    return [wave for wave in waves if wave]
