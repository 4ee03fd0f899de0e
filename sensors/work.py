"""What the dispatcher works on: an entry's event with its handlers, and what is left of it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bus.events import BusEvent
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


@dataclass(frozen=True, slots=True)
class Unfinished:
    """A handler whose first attempt failed (``outcome`` holds the error), or was still
    running when the batch moved on (``outcome`` is a future)."""

    work: Work
    handler: Handler
    outcome: Outcome | asyncio.Future[Outcome]
