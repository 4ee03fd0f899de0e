"""Reading and clearing the idempotency ledger's records in tests (``bus.ledger``)."""

from __future__ import annotations

from typing import cast

import redis

from bus import CheckEvent, Keys, OpEvent, RunEvent
from bus.ledger import find_record


def is_recorded(
    client: redis.Redis, keys: Keys, event: RunEvent | OpEvent | CheckEvent, handler: str
) -> bool:
    """Whether ``handler`` is recorded as having succeeded on ``event``."""
    found = find_record(client, keys, event.event_id, handler, since=event.occurred_at)
    return found is not None


def recorded_handlers(client: redis.Redis, keys: Keys) -> list[str]:
    """Every record's ``event_id:handler``, in whatever slot it is."""
    fields: list[str] = []
    for key in client.scan_iter(match=f"{keys.handled_slots}*"):
        fields += [field.decode() for field in cast(list[bytes], client.hkeys(key))]
    return fields


def forget_successes(client: redis.Redis, keys: Keys) -> None:
    """Delete every record, so that every handler runs again on its events."""
    for pattern in (f"{keys.handled_slots}*", keys.handled("*", "*")):
        for key in client.scan_iter(match=pattern):
            client.delete(key)
