"""Reading the state of the bus for operators: streams, groups, consumers, workers.

Everything here is read-only and cheap enough to run every few seconds (``hookbus
status``, health checks, the watcher).
"""

from __future__ import annotations

from typing import Any, cast

import redis
from pydantic import BaseModel, ConfigDict

from bus.deadletter_admin import count_dead_letters
from bus.keys import Keys
from bus.runs import RunRecord
from bus.utils import text

_REPORT = ConfigDict(frozen=True, extra="forbid")


class ConsumerStatus(BaseModel):
    """One consumer of a group."""

    model_config = _REPORT

    name: str
    pending: int
    idle_s: float


class GroupStatus(BaseModel):
    """One consumer group on one stream."""

    model_config = _REPORT

    name: str
    #: Entries not yet delivered to the group (``None`` when Redis cannot tell, after a trim).
    lag: int | None
    #: Entries delivered and not acknowledged.
    pending: int
    #: How long the oldest pending entry has waited since its last delivery, in seconds.
    oldest_pending_s: float | None
    consumers: list[ConsumerStatus]


class StreamStatus(BaseModel):
    """One event stream (shard)."""

    model_config = _REPORT

    name: str
    length: int
    first_id: str | None
    last_id: str | None
    groups: list[GroupStatus]


class WorkerStatus(BaseModel):
    """A worker whose liveness key is present."""

    model_config = _REPORT

    consumer: str
    location: str
    expires_in_s: float


class ActiveRun(BaseModel):
    """A run that has not reached a terminal state, from its crash-contract record."""

    model_config = _REPORT

    run_id: str
    job_name: str
    state: str
    seq: int
    running_ops: list[str]
    host: str | None
    pid: int | None
    #: Seconds until the run counts as lost unless its heartbeat refreshes it (negative:
    #: overdue; a worker will publish the crash).
    deadline_in_s: float


class BusStatus(BaseModel):
    """The state of the bus at one moment."""

    model_config = _REPORT

    streams: list[StreamStatus]
    dead_letters: int
    workers: list[WorkerStatus]
    active_runs: list[ActiveRun] = []


def inspect_bus(client: redis.Redis, keys: Keys) -> BusStatus:
    """Collect the streams, groups, dead-letter count and live workers."""
    return BusStatus(
        streams=[_stream(client, stream) for stream in keys.all_event_streams()],
        dead_letters=count_dead_letters(client, keys),
        workers=_workers(client, keys),
        active_runs=active_runs(client, keys),
    )


def active_runs(client: redis.Redis, keys: Keys) -> list[ActiveRun]:
    """Every non-terminal run with a liveness entry, soonest deadline first."""
    # Deadlines are on the Redis server's clock (``bus.runs``): compare with it.
    seconds, micros = client.time()
    now = seconds + micros / 1_000_000
    runs: list[ActiveRun] = []
    for zset in keys.all_runs_alive():
        members = cast(list[tuple[bytes, float]], client.zrange(zset, 0, -1, withscores=True))
        for member, deadline in members:
            run_id = member.decode()
            record = RunRecord.from_hash(
                cast(dict[bytes, bytes], client.hgetall(keys.run_record(run_id)))
            )
            if record is None:
                continue  # ended between the two reads
            runs.append(
                ActiveRun(
                    run_id=run_id,
                    job_name=record.run.job_name,
                    state=record.state,
                    seq=record.seq,
                    running_ops=sorted(record.running),
                    host=record.host,
                    pid=record.pid,
                    deadline_in_s=round(deadline - now, 3),
                )
            )
    return sorted(runs, key=lambda run: run.deadline_in_s)


def _stream(client: redis.Redis, stream: str) -> StreamStatus:
    if not client.exists(stream):
        return StreamStatus(name=stream, length=0, first_id=None, last_id=None, groups=[])
    info: dict[str, Any] = client.xinfo_stream(stream)
    groups: list[dict[str, Any]] = client.xinfo_groups(stream)
    return StreamStatus(
        name=stream,
        length=int(info["length"]),
        first_id=_entry_id(info.get("first-entry")),
        last_id=_text(info.get("last-generated-id")),
        groups=[_group(client, stream, group) for group in groups],
    )


def _group(client: redis.Redis, stream: str, group: dict[str, Any]) -> GroupStatus:
    name = _text(group["name"]) or ""
    oldest = cast(
        list[dict[str, Any]],
        client.xpending_range(stream, name, min="-", max="+", count=1),
    )
    consumers: list[dict[str, Any]] = client.xinfo_consumers(stream, name)
    lag = group.get("lag")
    return GroupStatus(
        name=name,
        lag=None if lag is None else int(lag),
        pending=int(group["pending"]),
        oldest_pending_s=oldest[0]["time_since_delivered"] / 1000 if oldest else None,
        consumers=[
            ConsumerStatus(
                name=_text(consumer["name"]) or "",
                pending=int(consumer["pending"]),
                idle_s=int(consumer["idle"]) / 1000,
            )
            for consumer in consumers
        ],
    )


def _workers(client: redis.Redis, keys: Keys) -> list[WorkerStatus]:
    workers = []
    for key in sorted(client.scan_iter(match=keys.worker_heartbeat("*"), count=500)):
        pipe = client.pipeline(transaction=False)
        pipe.get(key)
        pipe.pttl(key)
        location, ttl_ms = pipe.execute()
        if location is None:
            continue  # expired between SCAN and GET
        consumer = _text(key).removeprefix(keys.worker_heartbeat(""))  # type: ignore[union-attr]
        workers.append(
            WorkerStatus(
                consumer=consumer,
                location=_text(location) or "",
                expires_in_s=max(0, int(ttl_ms)) / 1000,
            )
        )
    return workers


def _entry_id(entry: Any) -> str | None:
    if not entry:
        return None
    return _text(entry[0])


def _text(value: Any) -> str | None:
    return None if value is None else text(value)
