"""A resend adds only the events its lost round trip did not add.

When a publish round trip goes unanswered (Redis stopped answering, a timeout, the
process interrupted mid-call), the script may or may not have run: the publisher cannot
tell, so it sends the events again (``bus.publisher``), and a dead run's spool is flushed
by another process (``bus.spool.flush_spool``) although its last batch may have landed. Had
the first attempt run, every event would then sit in its stream twice; the workers' ledger
keeps a handler from running twice only once the first copy's handler has *ended*, and two
workers handling the two copies at the same moment would both run it.

So a resend asks its stream first, in the same atomic script: an event whose id is among
the newest ``RESEND_LOOKBACK`` entries of its stream is not added again. A lost reply is
resent within seconds, so its original is among the newest entries; further back (a long
outage on a busy stream) the event goes again, and the workers deal with the copy as
before. First attempts are never checked: the scan costs Redis about 4 µs per entry read
(8 ms for all 2,000), paid only for the events of a round trip that got no answer.
"""

from __future__ import annotations

from typing import Final

#: How many of a stream's newest entries a resend looks through for its events.
RESEND_LOOKBACK: Final = 2000
#: Entries read per ``XREVRANGE`` of the look-back (one Lua table each, so not all at once).
_PAGE: Final = 250


#: Lua, a block that sets ``added`` (declared before it) to the set of indexes ``i`` of
#: ``ARGV[first..]`` whose event (added to stream ``KEYS[i - key_shift]``) is already among
#: the newest ``RESEND_LOOKBACK`` entries of its stream. A block rather than a function, so
#: that a first send, which skips it, creates no closure. An event's id is the first
#: ``event_id`` of its JSON, where ``bus.events.encode_event`` puts it. Needs Redis 6.2
#: (exclusive ranges).
def already_added_lua(first: int, key_shift: int) -> str:
    """The block, for events from ``ARGV[first]`` on, each in ``KEYS[i - key_shift]``."""
    return (
        """
do
  local pattern, wanted, left, found = '"event_id":"([^"]+)"', {}, {}, {}
  for i = """
        + str(first)
        + """, #ARGV do
    local id, stream = string.match(ARGV[i], pattern), KEYS[i - """
        + str(key_shift)
        + """]
    if id then
      if not wanted[stream] then wanted[stream], left[stream] = {}, 0 end
      if wanted[stream][id] == nil then
        wanted[stream][id] = true
        left[stream] = left[stream] + 1
      end
    end
  end
  for stream, ids in pairs(wanted) do
    local last, scanned = '+', 0
    while left[stream] > 0 and scanned < """
        + str(RESEND_LOOKBACK)
        + """ do
      local page = redis.call('XREVRANGE', stream, last, '-', 'COUNT', """
        + str(_PAGE)
        + """)
      for _, entry in ipairs(page) do
        local fields = entry[2]
        for j = 1, #fields - 1, 2 do
          local id = fields[j] == 'event' and string.match(fields[j + 1], pattern)
          if id and ids[id] then
            ids[id] = false
            found[id] = true
            left[stream] = left[stream] - 1
          end
        end
      end
      scanned = scanned + #page
      if #page < """
        + str(_PAGE)
        + """ then break end
      last = '(' .. page[#page][1]
    end
  end
  added = {}
  for i = """
        + str(first)
        + """, #ARGV do
    local id = string.match(ARGV[i], pattern)
    if id and found[id] then added[i] = true end
  end
end
"""
    )
