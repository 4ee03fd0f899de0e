"""Publishing a time-based check's event exactly once per occurrence.

A check fires for a *subject* (a stuck run's id, or a job's name). ``FIRE_SCRIPT`` does,
atomically on one Cluster slot: ``SET NX`` the occurrence's marker
(``Keys.check_fired``, TTL = the check's window), and only if that set it, ``XADD`` the
``CheckEvent`` to the subject's stream (``Keys.stream_for_check``). So there is no moment
where the event is published but the occurrence not marked, or the reverse: a worker that
dies before the script has published nothing (the next evaluation fires it), one that
dies after it has published it once; two workers evaluating at once (a lease handed over
mid-run) cannot both publish.

The event's id is derived from (check, subject, occurrence) (``check_event_id``), not
random: should the same occurrence ever be published twice (its marker deleted by hand),
every handler of the second copy finds the ledger record of the first and is skipped.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from typing import Any, Final

from bus.events import CheckEvent, encode_event
from bus.keys import HOOKS_GROUP, Keys
from bus.runs import EVENT_FIELD

#: KEYS: the occurrence's marker, the stream. ARGV: the event id, its TTL in seconds, the
#: event's JSON. Creates the ``hooks`` group with the stream (at ``$``, as the engine's
#: publisher does), so the event reaches a worker even on a stream nobody wrote yet.
#: Returns 1 if it published, 0 if the occurrence had fired already.
FIRE_SCRIPT: Final = f"""
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[2], '{HOOKS_GROUP}', '$', 'MKSTREAM')
end
redis.call('XADD', KEYS[2], '*', '{EVENT_FIELD.decode()}', ARGV[3])
return 1
"""


def check_subject(event: CheckEvent) -> str:
    """What the check fired about: the stuck run, or the job."""
    return event.run_id or event.job_name


def check_event_id(check: str, subject: str, fired_at: datetime, within_s: float) -> str:
    """The event id of ``check``'s occurrence for ``subject`` at ``fired_at``.

    An occurrence is the window-long period (counted from the epoch) the check fires in: a
    marker lives one window, so a later firing of the same check for the same subject
    always falls in a later period and gets a new id.
    """
    period = int(fired_at.timestamp() // max(within_s, 1.0))
    digest = hashlib.sha256(f"{check}\0{subject}\0{period}".encode())
    return digest.hexdigest()[:32]


def fire_args(keys: Keys, event: CheckEvent) -> tuple[list[str], list[Any]]:
    """``KEYS`` and ``ARGV`` of ``FIRE_SCRIPT`` for ``event``."""
    subject = check_subject(event)
    # Rounded up, so the marker outlives the period it fired in (see ``check_event_id``).
    ttl_s = max(1, math.ceil(event.within_s))
    return (
        [keys.check_fired(event.check_name, subject), keys.stream_for_check(subject)],
        [event.event_id, ttl_s, encode_event(event)],
    )
