"""Where the ledger's records live: one hash per hour of the Redis server's clock, and the
script that writes and looks them up in one round trip (``bus.ledger.Ledger``)."""

from __future__ import annotations

import uuid
from typing import Final

#: Records are kept per time slot of this many seconds, on the Redis server's clock: one
#: hash per slot (``Keys.handled_in``), a field per (event, handler). Writing a field costs
#: Redis under half of what a key with its own TTL cost (8.6k instructions against 17.3k,
#: counted with callgrind on redis-server), since one ``HSET`` takes a whole batch and
#: nothing goes into the expiry table. Part of every key: changing it loses the records.
SLOT_S: Final = 3600
#: How far before its ``occurred_at`` (the engine host's clock) an event's record may have
#: been written (the Redis server's clock): hosts' clocks may disagree by this much.
CLOCK_SLACK_S: Final = 3600

#: ARGV: the slot keys' prefix, this worker's TTL, the key keeping the longest TTL any
#: worker uses, the checks, then (value, fields) pairs: the fields to write with that
#: value. Each list is one argument joined by NUL (redis-py packs each argument in Python:
#: thousands of them cost more than the work), split with a plain ``string.find`` (a
#: ``gmatch`` pattern costs more, measured). A check is three items: the field, the first
#: slot to look in ("": the oldest kept) and its key as written before slots
#: (``Keys.handled``). Returns 0/1 per check, after the writes.
#:
#: Slots are on the server's clock (``TIME``), so workers' clocks do not matter. The
#: slot's TTL is only ever raised: workers with a longer TTL keep it longer, and checks look
#: back as far as the longest TTL any worker wrote with. A write also unlinks the slot
#: whose TTL is about to run out, so that Redis frees it in its background thread: an
#: expiring hash of millions of fields is freed inline, stalling every client. (``TTL``
#: and ``EXPIRE`` rather than ``EXPIRE … GT``, which needs Redis 7: the embedded Redis of
#: ``pip install hookbus[embedded]`` is 6.2.) The keys are not declared: on a single
#: Redis that is allowed; a Redis Cluster gets a pipeline instead (``Ledger._round_trip``).
WRITE_THEN_CHECK: Final = (
    """
local function split(joined)
  local items, start = {}, 1
  while start <= #joined do
    local stop = string.find(joined, '\\0', start, true) or (#joined + 1)
    items[#items + 1] = string.sub(joined, start, stop - 1)
    start = stop + 1
  end
  return items
end
local function slot_key(slot) return ARGV[1] .. string.format('%d', slot) end
local slot_s, now = """
    + str(SLOT_S)
    + """, tonumber(redis.call('TIME')[1])
local ttl, kept = tonumber(ARGV[2]), tonumber(redis.call('GET', ARGV[3]) or 0)
if #ARGV >= 5 then
  local slot = math.floor(now / slot_s)
  local key = slot_key(slot)
  for group = 5, #ARGV, 2 do
    local value, fields = ARGV[group], split(ARGV[group + 1])
    for first = 1, #fields, 2000 do  -- unpack is bounded by Lua's C stack (8000)
      local args = {}
      for i = first, math.min(first + 1999, #fields) do
        args[#args + 1] = fields[i]
        args[#args + 1] = value
      end
      redis.call('HSET', key, unpack(args))
    end
  end
  -- The slot's last record is kept ttl: to one slot past its end, and one more.
  local keep = (slot + 2) * slot_s + ttl - now
  if redis.call('TTL', key) < keep then redis.call('EXPIRE', key, keep) end
  -- Renewed only by the workers with the longest TTL: once they are gone, it lapses.
  if kept <= ttl then
    kept = ttl
    redis.call('SET', ARGV[3], ttl, 'EX', ttl + 2 * slot_s)
  end
  -- The slots whose TTL (per this worker's) runs out within the next slot.
  local ending = math.floor((now - ttl) / slot_s) - 1
  for old = ending - 1, ending do
    local left = redis.call('PTTL', slot_key(old))
    if left >= 0 and left <= slot_s * 1000 then redis.call('UNLINK', slot_key(old)) end
  end
end
if kept < ttl then kept = ttl end
local oldest, last = math.floor((now - kept) / slot_s) - 2, math.floor(now / slot_s) + 1
local checks, found = split(ARGV[4]), {}
for i = 1, #checks, 3 do
  local field, slot = checks[i], tonumber(checks[i + 1]) or oldest
  local hit = redis.call('EXISTS', checks[i + 2])
  slot = math.max(slot, oldest)
  while hit == 0 and slot <= last do
    hit = redis.call('HEXISTS', slot_key(slot), field)
    slot = slot + 1
  end
  found[#found + 1] = hit
end
return found
"""
)


def slot_of(at: float) -> int:
    """The slot a record written at ``at`` (seconds since the epoch) goes to."""
    return int(at // SLOT_S)


def record_field(event_id: str, handler: str) -> str:
    """The field of (event, handler)'s record in its slot's hash."""
    return f"{event_id}:{handler}"


def shared_record_field() -> str:
    """A fresh field for a record that several (event, handler) fields share: their value is
    this field's name, which no ``record_field`` can be (event ids hold no ``@``). A batch's
    hooks ran together, so one record says where and when for all of them; stored once, it
    halves what a record costs Redis in big batches (``docs/performance.md``)."""
    return f"@{uuid.uuid4().hex[:16]}"


def joined(items: list[str]) -> str:
    """``items`` joined by NUL, as the script splits them.

    Raises:
        ValueError: an item holds a NUL byte (it would be split in two).
    """
    text = "\0".join(items)
    if text.count("\0") != max(len(items) - 1, 0):  # one C pass, not a test per item
        raise ValueError(
            "a ledger record holds a NUL byte; event ids and handler (hook, sensor, check) "
            "names must not: rename it"
        )
    return text
