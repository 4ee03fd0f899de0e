"""Every Redis key, stream and consumer-group name hookbus uses, built in one place.

Names that must share a Redis Cluster slot carry the same ``{hash tag}``: a shard's event
stream and its dead-letter stream share the tag ``{<prefix>:s<shard>}`` so that one run's
events (always in one shard) keep their order and can be moved between them atomically.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Final

#: The consumer group that runs hooks. The publisher creates it (at ``$``, with MKSTREAM)
#: before its first XADD, so events published before any worker starts are still handled.
HOOKS_GROUP: Final = "hooks"


def read_mark_for(events_stream: str, group: str) -> str:
    """The newest entry id any consumer of ``group`` was given on ``events_stream``
    (``bus.read_mark``): an entry a read gives at or below it was given before (the group
    was moved back). Same slot as the stream. No TTL: one short string per stream, for the
    group that trusts first deliveries (``hooks``)."""
    return f"{events_stream}:read-mark:{group}"


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one prefix (``HOOKBUS_KEY_PREFIX``), for ``shards`` event streams."""

    prefix: str = "hookbus"
    shards: int = 1

    def shard_of(self, run_id: str) -> int:
        """The shard a run's events go to; stable, so one run's events stay in order."""
        return zlib.crc32(run_id.encode()) % self.shards

    def _tag(self, shard: int) -> str:
        return f"{{{self.prefix}:s{shard}}}"

    def events_stream(self, shard: int) -> str:
        """The stream of run/op events of one shard. Trimmed by age/size, never expires."""
        return f"{self._tag(shard)}:events"

    def stream_for_run(self, run_id: str) -> str:
        """The event stream a run publishes to."""
        return self.events_stream(self.shard_of(run_id))

    def all_event_streams(self) -> list[str]:
        """Every shard's event stream, in shard order."""
        return [self.events_stream(shard) for shard in range(self.shards)]

    def dead_letter_stream(self, shard: int) -> str:
        """Entries and handler runs that could not be processed, with the reason. No TTL."""
        return f"{self._tag(shard)}:dead"

    def dead_letter_for(self, events_stream: str) -> str:
        """The dead-letter stream that goes with ``events_stream`` (same shard, same slot)."""
        return events_stream.removesuffix(":events") + ":dead"

    def sensor_group(self, sensor_name: str) -> str:
        """The consumer group of one sensor: each sensor has its own position and lag."""
        return f"sensor:{sensor_name}"

    def handled_in(self, slot: int) -> str:
        """The idempotency records written in one hour of the Redis server's clock (slot
        ``unix time // bus.ledger_slots.SLOT_S``): a hash, one field ``<event id>:<handler>`` per
        handler that succeeded on an event. Kept at least ``WorkerSettings.idempotency_ttl_s``
        past each record, longer than any redelivery can take."""
        return f"{self.handled_slots}{slot}"

    @property
    def handled_slots(self) -> str:
        """What every ``handled_in`` key starts with (the ledger's script adds the slot)."""
        return f"{self.prefix}:handled-in:"

    @property
    def handled_kept_for(self) -> str:
        """The longest ``idempotency_ttl_s`` a worker recorded with lately: checks look back
        that far, whatever their own worker's TTL."""
        return f"{self.prefix}:handled-kept-for"

    def handled(self, event_id: str, handler: str) -> str:
        """The idempotency record of (event, handler) as a key of its own: how records were
        kept before slots (``handled_in``). Checks still read it, so records written before
        an upgrade are honoured until they expire; nothing writes it now."""
        return f"{self.prefix}:handled:{event_id}:{handler}"

    def run_record(self, run_id: str) -> str:
        """The crash contract's per-run record (a hash, ``bus.runs.RunRecord``).

        Written by the engine in the same atomic script as each event's XADD while the run is
        not terminal: the run, its last ``seq``, its state, the ops running now and the
        job's hook refs, so that whoever publishes a crash can continue the run's event
        sequence. Deleted with the terminal event. TTL: none while alive (a lost run's
        record is what the crash detector reads); ``RUN_RECORD_GRACE_S`` once claimed.
        Shares the run's shard tag, so events, record and liveness are one slot.
        """
        return f"{self._tag(self.shard_of(run_id))}:run:{run_id}"

    def runs_alive(self, shard: int) -> str:
        """ZSET of non-terminal runs of one shard: member run_id, score = deadline (epoch s).

        The engine adds a run with its first event, pushes the deadline to now +
        ``heartbeat_timeout_s`` every ``heartbeat_interval_s``, and removes it with the
        terminal event. Whoever publishes a crash first CLAIMS the run with ``ZREM`` (only
        the caller that gets 1 publishes), so a crash is published exactly once. No TTL.
        """
        return f"{self._tag(shard)}:alive"

    def run_crashed(self, run_id: str) -> str:
        """Set when a run's crash was claimed and published (a tombstone).

        The engine's record writes and heartbeats check it in the same script, so a run
        declared crashed (its engine lost Redis, or looked dead) is never brought back to
        life by the engine's late writes, and the engine learns that it was declared
        crashed. TTL: ``bus.runs.RUN_CRASHED_TTL_S`` (longer than any Redis outage a
        spooling engine rides out). Shares the run's shard tag (one slot with the record).
        """
        return f"{self._tag(self.shard_of(run_id))}:crashed:{run_id}"

    def runs_alive_for_run(self, run_id: str) -> str:
        """The liveness ZSET a run belongs to (its shard's)."""
        return self.runs_alive(self.shard_of(run_id))

    def all_runs_alive(self) -> list[str]:
        """Every shard's liveness ZSET, in shard order."""
        return [self.runs_alive(shard) for shard in range(self.shards)]

    def run_cancel(self, run_id: str) -> str:
        """Set (to the reason) when someone asks a run to stop; the engine polls it.

        TTL: ``CANCEL_REQUEST_TTL_S`` (a request for a run that never looks is forgotten).
        """
        return f"{self._tag(self.shard_of(run_id))}:cancel:{run_id}"

    def lease(self, name: str) -> str:
        """The lease of periodic job ``name`` (see ``bus.lease``); TTL = the lease's TTL."""
        return f"{self.prefix}:lease:{name}"

    def watch_state(self) -> str:
        """The watcher's memory of which alerting-path conditions are firing (a hash,
        field = condition, value = JSON since/notified_at). No TTL: it is tiny and must
        survive until the condition clears."""
        return f"{self.prefix}:watch"

    def worker_heartbeat(self, consumer: str) -> str:
        """A live worker's heartbeat (``hookbus worker --check``); TTL a few intervals."""
        return f"{self.prefix}:worker:{consumer}"

    def sensor_stopped(self, sensor_name: str) -> str:
        """Present while a sensor is stopped (``hookbus sensors stop``); no TTL.

        Workers check it before each read of the sensor's group, so a stopped sensor's
        position stays where it was until ``hookbus sensors start`` or ``replay`` moves it.
        """
        return f"{self.prefix}:sensor:{sensor_name}:stopped"

    # Notifications: rules, threads and noise control (notifiers.alerting, notifiers.noise,
    # notifiers.silences). ``destination`` is a destination's name, e.g. ``slack:#alerts``.

    def rule_group(self, rule_name: str) -> str:
        """The consumer group of one notification rule: its own position and lag."""
        return f"notify:{rule_name}"

    def alert_thread(self, destination: str, run_id: str) -> str:
        """A run's alert thread at one destination (hash: ``ts``, the first message, the
        failure count), so follow-ups thread under it and the first message can be updated.
        TTL: the rule's ``thread_ttl_s`` (default 7 days)."""
        return f"{self.prefix}:notify:thread:{destination}:{run_id}"

    def alert_sent(self, destination: str, event_id: str) -> str:
        """Set once the alert for an event reached a destination, so a retried handler does
        not post it twice. TTL: the rule's ``thread_ttl_s``."""
        return f"{self.prefix}:notify:sent:{destination}:{event_id}"

    def alert_dedupe(self, rule_name: str, destination: str, fingerprint: str) -> str:
        """Present while an alert with this (job, op, error signature) fingerprint was sent
        recently; its value is the event that was. TTL: the rule's ``dedupe_window_s``."""
        return f"{self.prefix}:notify:dedupe:{rule_name}:{destination}:{fingerprint}"

    def alert_group(self, rule_name: str, destination: str, group_id: str) -> str:
        """The open burst of a run (or job): present while its first alert's grouping window
        is open; value = that event's id. TTL: the rule's ``group_window_s``. Shares a
        Cluster slot with ``alert_group_pending`` (one Lua script touches both)."""
        return f"{{{self.prefix}:notify:group:{rule_name}:{destination}:{group_id}}}:open"

    def alert_group_pending(self, rule_name: str, destination: str, group_id: str) -> str:
        """The burst's later alerts, collected to be sent as one (hash: event id -> event
        JSON, so a retry adds nothing twice). TTL: ten grouping windows plus a minute, in
        case the worker that would send them dies (the run's end sends them too)."""
        return f"{{{self.prefix}:notify:group:{rule_name}:{destination}:{group_id}}}:pending"

    def alert_rate(self, destination: str, minute: int) -> str:
        """Messages sent to a destination in one clock minute (``minute`` = Unix time // 60),
        for its rate limit. TTL: two minutes."""
        return f"{self.prefix}:notify:rate:{destination}:{minute}"

    def silences(self) -> str:
        """Active silences (hash: id -> ``notifiers.silences.Silence`` JSON). No TTL: each
        silence carries its end; expired ones are removed when read."""
        return f"{self.prefix}:notify:silences"

    def silence_hits(self) -> str:
        """How many alerts each silence suppressed (hash: id -> count). No TTL; an entry is
        removed with its silence."""
        return f"{self.prefix}:notify:silences:hits"

    def suppressed_alerts(self) -> str:
        """A record of every alert noise control held back (silenced, duplicate, grouped,
        rate-limited) with the rule, destination and event. Capped at ~10,000 entries."""
        return f"{self.prefix}:notify:suppressed"

    def check_fired(self, check: str, subject: str, event_id: str) -> str:
        """Set when time-based check ``check`` fired occurrence ``event_id`` for ``subject``
        (a run id or a job name), so each occurrence is published once. TTL: the span in
        which the occurrence can be seen again plus ``bus.checks.MARKER_GRACE_S``, renewed
        by every evaluation that still sees it (a stuck run's marker lives as long as the
        run stays stuck). Shares the tag of the stream the check's event goes to
        (``stream_for_check``) and of a stuck run's record: one script checks, marks and
        publishes.
        """
        return f"{self._tag(self.shard_of(subject))}:check:{check}:{subject}:fired:{event_id}"

    def check_state(self, check: str, job_name: str) -> str:
        """What a time-based check remembers between evaluations (a hash): ``watching_since``
        (epoch s, Redis clock: set by its first evaluation; freshness counts its window
        from it) and ``counted_through`` (failure counts: the newest failure already
        reported). No TTL: it is tiny and must outlive any window. Shares the tag of the
        job's check stream, so ``bus.checks.FIRE_SCRIPT`` updates it with the event.
        """
        return f"{self._tag(self.shard_of(job_name))}:check:{check}:{job_name}:state"

    def check_cursor(self, shard: int) -> str:
        """The last entry of shard ``shard``'s event stream that the check history has read
        (a stream id). No TTL. Shares the shard's tag."""
        return f"{self._tag(shard)}:check-cursor"

    def job_successes(self, job_name: str) -> str:
        """A job's newest successful run (ZSET of one: run_id -> ``occurred_at``, epoch s),
        kept by the check history (``bus.check_history``). TTL: ``HISTORY_TTL_S``, renewed by
        every write. The job's history keys share one tag (one script writes them)."""
        return f"{self._job_tag(job_name)}:succeeded"

    def job_failures(self, job_name: str) -> str:
        """A job's failed and crashed runs (ZSET: run_id -> ``occurred_at``, epoch s), trimmed
        to the largest window of its failure-count checks. TTL as ``job_successes``."""
        return f"{self._job_tag(job_name)}:failed"

    def job_runs(self, job_name: str) -> str:
        """The name and error of each run in ``job_successes``/``job_failures`` (hash:
        run_id -> JSON), trimmed with them. TTL as ``job_successes``."""
        return f"{self._job_tag(job_name)}:runs"

    def _job_tag(self, job_name: str) -> str:
        return f"{{{self.prefix}:history:{job_name}}}"

    def stream_for_check(self, subject: str) -> str:
        """The stream a check's event goes to: the run's own (stuck runs), else the job's
        (its name hashed like a run id)."""
        return self.events_stream(self.shard_of(subject))

    def run_request(self, sensor: str, run_key: str) -> str:
        """Set when sensor ``sensor`` started a run for ``run_key``, so it starts once.

        TTL: ``sensors.run_requests.RUN_KEY_TTL_S`` (a week)."""
        return f"{self.prefix}:run-request:{sensor}:{run_key}"
