"""A group's read mark: the newest entry any of its consumers was given on a stream.

A read with ``>`` gives only entries newer than any the group gave before, unless the group
was moved back (``XGROUP SETID``): then old entries come again as new. The mark, kept in
Redis (``bus.keys.read_mark_for``), lets a consumer tell that whichever consumer, in this
worker or an earlier one, was given them: each read publishes the newest entry its
consumer was given so far and reads the mark back right after its ``XREADGROUP``, in the
same round trip (``bus.consumer.Consumer.read``). What a consumer was given in its latest
read is published with its next read, which follows within milliseconds: that is the
window left.
"""

from __future__ import annotations

import logging
from typing import Final

from bus.utils import entry_order

logger = logging.getLogger(__name__)

#: Raise the mark in KEYS[1] to the entry id ARGV[1] ("<ms>-<seq>"; empty: nothing to
#: publish) if that is newer. Ids are compared as numbers: as strings "9-0" > "10-0". A
#: mark that is no entry id (set by hand) is replaced.
PUBLISH_SCRIPT: Final = """
if ARGV[1] == '' then return 0 end
local old = redis.call('GET', KEYS[1])
local old_ms, old_seq = string.match(old or '', '^(%d+)-(%d+)$')
if old_ms then
  local new_ms, new_seq = string.match(ARGV[1], '^(%d+)-(%d+)$')
  old_ms, new_ms = tonumber(old_ms), tonumber(new_ms)
  if new_ms < old_ms or (new_ms == old_ms and tonumber(new_seq) <= tonumber(old_seq)) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""


def as_entry_id(order: tuple[int, int] | None) -> str:
    """An ``entry_order`` pair as the script takes it (``""`` for none)."""
    return "" if order is None else f"{order[0]}-{order[1]}"


def parse_mark(raw: object, *, key: str) -> tuple[int, int] | None:
    """A mark as read from Redis (``None``: none published yet, or not an entry id)."""
    if raw is None:
        return None
    try:
        return entry_order(raw)
    except ValueError:
        logger.warning(
            "read mark key=%s holds %r, not an entry id; ignored, and replaced by the next "
            "read's (to reset a mark by hand, DEL it)",
            key,
            raw,
        )
        return None
