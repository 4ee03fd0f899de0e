"""What the dispatcher works on: an entry's event with its handlers, and what is left of it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from bus.events import BusEvent, CheckEvent
from sensors.handlers import Handler
from sensors.hook_threads import Outcome


# Not frozen: one is made per entry (see ``Handler``).
@dataclass(slots=True, eq=False)
class Work:
    """One stream entry's event and the handlers it triggers in one group."""

    event: BusEvent
    handlers: list[Handler]
    stream: str
    entry_id: str
    #: Ask the ledger before the first attempts (not for a trusted first delivery:
    #: ``Subscription.trusts_first_deliveries``).
    needs_check: bool = True

    def recorded_since(self) -> datetime | None:
        """The earliest a handler's record of this entry's event can have been written, so the
        ledger looks in no older slot (it allows for clocks that disagree, ``CLOCK_SLACK_S``).

        Every copy of a run's or op's event carries the bytes the engine encoded, so the same
        ``occurred_at``; the entry's own id is the Redis clock when it was added, which bounds
        a reclaim's record whatever the engine host's clock says. A check's occurrence is
        fired again, with a new time, only once its fired marker is gone (a day without an
        evaluation, or deleted by hand): those look in every slot still kept.
        """
        if isinstance(self.event, CheckEvent):
            return None
        added_ms = int(self.entry_id.split("-", 1)[0])
        return min(self.event.occurred_at, datetime.fromtimestamp(added_ms / 1000, UTC))


@dataclass(frozen=True, slots=True)
class Unfinished:
    """A handler whose first attempt failed (``outcome`` holds the error), or was still
    running when the batch moved on (``outcome`` is a future)."""

    work: Work
    handler: Handler
    outcome: Outcome | asyncio.Future[Outcome]
