"""A resend adds only the events its lost round trip did not add.

When a publish round trip goes unanswered (Redis stopped answering, a timeout, the
process interrupted mid-call), the script may or may not have run: the publisher cannot
tell, so it sends the events again (``bus.publisher``), and a dead run's spool is flushed
by another process (``bus.spool.flush_spool``) although its last batch may have landed. Had
the first attempt run, every event would then sit in its stream twice; the workers' ledger
keeps a handler from running twice only once the first copy's handler has *ended*, and two
workers handling the two copies at the same moment would both run it.

So a resend asks its stream first, in the same atomic script: an event whose exact bytes
(a resend sends the very bytes it sent before) are among its stream's newest entries is
not added again. A lost reply is resent within seconds, so its original is among the
newest entries; further back (a long outage on a busy stream) the event goes again, and
the workers deal with the copy as before. The look-back reads at most
``RESEND_LOOKBACK`` entries and ``RESEND_LOOKBACK_BYTES`` of events, since reading them is
what costs: 3-11 ms when it finds nothing, for events of 0.6 to 256 kB
(docs/operations.md). First attempts are never looked up.
"""

from __future__ import annotations

from typing import Final

#: How many of a stream's newest entries a resend looks through for its events, at most.
RESEND_LOOKBACK: Final = 2000
#: How many bytes of those entries' events it reads, at most (events with tracebacks are
#: large: 2,000 of 100 kB would stall Redis for over a second).
RESEND_LOOKBACK_BYTES: Final = 2_000_000
#: Entries read per ``XREVRANGE`` of the look-back: each page is one Lua table, so what is
#: read past the byte limit is at most a page of the largest events (8 × 256 kB), whatever
#: mix of sizes the stream holds; the calls themselves cost little next to the entries.
_PAGE: Final = 8


def already_added_lua(first: int, key_shift: int) -> str:
    """Lua: a block that sets ``present`` (declared before it) to the set of indexes ``i``
    of ``ARGV[first..]`` whose event, headed for stream ``KEYS[i - key_shift]``, is already
    among that stream's newest entries, byte for byte. A block rather than a function, so
    that a first send, which skips it, creates no closure. Needs Redis 6.2 (exclusive
    ranges)."""
    return (
        """
do
  local wanted, left, found = {}, {}, {}
  for i = """
        + str(first)
        + """, #ARGV do
    local stream = KEYS[i - """
        + str(key_shift)
        + """]
    if not wanted[stream] then wanted[stream], left[stream], found[stream] = {}, 0, {} end
    if wanted[stream][ARGV[i]] == nil then
      wanted[stream][ARGV[i]] = true
      left[stream] = left[stream] + 1
    end
  end
  for stream, events in pairs(wanted) do
    local last, entries, bytes, full = '+', 0, 0, true
    while full and left[stream] > 0 and entries < """
        + str(RESEND_LOOKBACK)
        + " and bytes < "
        + str(RESEND_LOOKBACK_BYTES)
        + """ do
      local count = math.min("""
        + str(_PAGE)
        + ", "
        + str(RESEND_LOOKBACK)
        + """ - entries)
      local page = redis.call('XREVRANGE', stream, last, '-', 'COUNT', count)
      full = #page == count
      for _, entry in ipairs(page) do
        if bytes >= """
        + str(RESEND_LOOKBACK_BYTES)
        + """ then break end
        entries = entries + 1
        local fields = entry[2]
        for j = 1, #fields - 1, 2 do
          local value = fields[j + 1]
          bytes = bytes + #value
          if fields[j] == 'event' and events[value] then
            events[value] = false
            found[stream][value] = true
            left[stream] = left[stream] - 1
          end
        end
      end
      if full then last = '(' .. page[#page][1] end
    end
  end
  present = {}
  for i = """
        + str(first)
        + """, #ARGV do
    if found[KEYS[i - """
        + str(key_shift)
        + """]][ARGV[i]] then present[i] = true end
  end
end
"""
    )


#: Which of the events in ARGV (event ``i`` headed for stream ``KEYS[i]``) are among their
#: streams' newest entries: their indexes, ascending. It adds nothing: a spool flush looks
#: its whole file up first, then adds what is missing, so that what it adds does not push
#: the rest of the file out of the look-back.
FIND_SCRIPT: Final = (
    "local present = false\n"
    + already_added_lua(1, 0)
    + """
local indexes = {}
for i = 1, #ARGV do
  if present[i] then indexes[#indexes + 1] = i end
end
return indexes
"""
)
