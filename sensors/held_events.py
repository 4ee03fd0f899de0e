"""Which events a group's held entries carry, so that a second copy waits for the first.

A dead-letter replay adds an event again by hand, and so does a publisher's resend whose
original is further back than its look-up (``bus.resends``): the same event then sits in
two entries. The ledger
keeps a copy from running what already *succeeded*, but it is written only once a handler
has ended, so a copy read while its original's handlers still run (in a later batch, the
first still retrying or calling Slack; or next to it in one batch) would find no record
and run them again. Within a worker that is what this index prevents: the first entry of
a group to bring an event *holds* it until it is settled (its ack queued, or handed back
for a reclaim), and a copy read meanwhile runs nothing and waits for that. Then it is
handled as a redelivery, asking the ledger, so only what the original did not record runs
(a replayed dead letter's handler); or it is handed back with the original. Copies on two
workers at once are not covered: that would take a lock in Redis before every hook
(``docs/operations.md``).
"""

from __future__ import annotations

import asyncio

from bus.consumer import Delivery


class HeldEvents:
    """The events of one group's entries between their first attempts and their settling."""

    def __init__(self) -> None:
        self._holder: dict[str, Delivery] = {}  # event id -> the entry running its handlers
        self._event_of: dict[Delivery, str] = {}
        self._settled: dict[str, asyncio.Future[bool]] = {}  # made once a copy waits

    def __repr__(self) -> str:
        return f"<HeldEvents held={len(self._holder)} waited_on={len(self._settled)}>"

    def __len__(self) -> int:
        return len(self._holder)

    def claim(self, event_id: str, delivery: Delivery) -> asyncio.Future[bool] | None:
        """Hold ``event_id`` for ``delivery``, unless another entry holds it.

        Returns:
            ``None``: ``delivery`` runs the event's handlers (it holds the event now, or
            already did: a batch handled again). Else a future that is set as the holder
            is settled: ``True`` finished, ``False`` handed back. Await it shielded: it
            is shared by every copy that waits.
        """
        holder = self._holder.setdefault(event_id, delivery)
        if holder is delivery:
            self._event_of[delivery] = event_id
            return None
        settled = self._settled.get(event_id)
        if settled is None:
            settled = self._settled[event_id] = asyncio.get_running_loop().create_future()
        return settled

    def settle(self, deliveries: list[Delivery], *, finished: bool) -> None:
        """``deliveries`` are acked (``finished``) or handed back: their events are free, and
        the copies waiting for them follow. Entries that held nothing are ignored."""
        # At thousands of entries a second, with a copy almost never waiting: the lookups
        # are bound once, and the futures looked for only when one exists.
        event_of, holder, waited_on = self._event_of, self._holder, self._settled
        for delivery in deliveries:
            event_id = event_of.pop(delivery, None)
            if event_id is None:
                continue
            del holder[event_id]
            if waited_on and event_id in waited_on:
                waiting = waited_on.pop(event_id)
                if not waiting.done():  # awaited shielded only: never cancelled
                    waiting.set_result(finished)
