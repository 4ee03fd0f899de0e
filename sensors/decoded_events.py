"""Each stream entry decoded once per worker, however many of its groups read it."""

from __future__ import annotations

from collections import OrderedDict

from bus.consumer import Delivery
from bus.events import BusEvent

#: Decoded events kept for the worker's other groups, which read the same entries.
DECODED_KEPT = 1024


class DecodedEvents:
    """Each entry decoded once per worker, however many of its groups read it.

    The hooks group, every sensor's and every rule's group read the same stream entries,
    usually within milliseconds of each other; validating the JSON is the largest single
    cost of handling an entry, so the last ``size`` decoded entries are kept (an entry's
    payload never changes). Invalid entries are not kept: each group meets the error.
    With ``size`` 0 nothing is kept (a worker whose streams only one group reads: the
    bookkeeping would cost 2 µs an entry for nothing).
    """

    def __init__(self, size: int = DECODED_KEPT) -> None:
        self._size = size
        # Ordered: dropping the oldest of a plain dict again and again gets slower as its
        # deleted slots pile up; ``popitem(last=False)`` stays O(1).
        self._events: OrderedDict[tuple[str, str], BusEvent] = OrderedDict()

    def __repr__(self) -> str:
        return f"<DecodedEvents kept={len(self._events)} size={self._size}>"

    def event(self, delivery: Delivery) -> BusEvent:
        """``delivery.event()``, decoded only if no group decoded it lately.

        Raises:
            EventValidationError: as ``Delivery.event``.
        """
        if not self._size:
            return delivery.event()
        key = (delivery.stream, delivery.entry_id)
        event = self._events.get(key)
        if event is None:
            event = self._events[key] = delivery.event()
            if len(self._events) > self._size:
                self._events.popitem(last=False)  # the oldest
        return event
