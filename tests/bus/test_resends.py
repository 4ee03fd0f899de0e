"""A resend's look-up: what it finds is the very event it sends, where the workers read it,
and it reads no further than its limits."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import cast

import redis

from bus import HOOKS_GROUP, Keys, OpEvent, OpInfo, OpState, RunInfo, connect_async
from bus.consumer import Consumer
from bus.events import ErrorInfo, encode_event
from bus.resends import RESEND_LOOKBACK, RESEND_LOOKBACK_BYTES
from bus.runs import EVENT_FIELD, FLUSH_BATCH, PUBLISH_SCRIPT, publish_args
from bus.settings import BusSettings
from bus.spool import SpoolFile, flush_spool
from tests.conftest import TEST_PREFIX
from tests.streams import read_stream

KEYS = Keys(prefix=TEST_PREFIX)
RUN = RunInfo(run_id="c" * 32, run_name="resent-cccccccc", job_name="resent")
STREAM = KEYS.stream_for_run(RUN.run_id)


def failed(seq: int, *, traceback_bytes: int = 0) -> OpEvent:
    return OpEvent(
        seq=seq,
        run=RUN,
        op=OpInfo(name="step", step_key=f"step_{seq}"),
        from_state=None,
        to_state=OpState.FAILED,
        error=ErrorInfo(type="ValueError", message="bad", traceback="x" * traceback_bytes),
    )


def lost_round_trip(client: redis.Redis, event: OpEvent) -> None:
    """Publish ``event`` as a round trip whose reply never came back would have."""
    script_keys, args = publish_args(
        None, [(STREAM, encode_event(event))], None, timeout_s=0, max_len=None
    )
    client.register_script(PUBLISH_SCRIPT)(keys=script_keys, args=args)


def delivered_to_hooks(client: redis.Redis) -> int:
    """How many entries the hooks group gives a new consumer now."""
    reply = cast(
        list[tuple[bytes, list[object]]], client.xreadgroup(HOOKS_GROUP, "w", {STREAM: ">"})
    )
    return sum(len(entries) for _, entries in reply)


def seqs_in_stream(client: redis.Redis) -> list[int]:
    return [
        int(json.loads(fields[EVENT_FIELD])["seq"]) for _, fields in read_stream(client, STREAM)
    ]


def flush(directory: Path, client: redis.Redis, *events: OpEvent) -> int:
    """Flush a dead run's spool holding ``events``; return how many were added."""
    spool = SpoolFile(directory, RUN.run_id)
    for event in events:
        spool.append(STREAM, encode_event(event), fsync=False)
    spool.close()
    return flush_spool(client, directory, keys=KEYS)


def test_an_entry_that_only_names_the_event_does_not_hide_it(
    tmp_path: Path, redis_client: redis.Redis
) -> None:
    event = failed(1)
    note = b'{"kind":"note","about":{"event_id":"%s"}}' % event.event_id.encode()
    redis_client.xadd(STREAM, {EVENT_FIELD: note})  # another tool's entry, say

    assert flush(tmp_path, redis_client, event) == 1


def test_an_original_added_where_redis_had_lost_the_stream_is_delivered_once(
    tmp_path: Path, redis_client: redis.Redis
) -> None:
    # The dead run's last round trip ran on a Redis restarted empty, its reply lost.
    event = failed(1)
    lost_round_trip(redis_client, event)

    assert flush(tmp_path, redis_client, event) == 0
    assert delivered_to_hooks(redis_client) == 1


def test_the_look_back_reads_no_more_than_its_byte_limit(
    tmp_path: Path, redis_client: redis.Redis
) -> None:
    big = 100_000  # a long traceback
    near, far = failed(1, traceback_bytes=big), failed(2, traceback_bytes=big)
    pipe = redis_client.pipeline(transaction=False)
    pipe.xadd(STREAM, {EVENT_FIELD: encode_event(far)})
    for seq in range(3, 3 + RESEND_LOOKBACK_BYTES // big + 1):  # past the limit
        pipe.xadd(STREAM, {EVENT_FIELD: encode_event(failed(seq, traceback_bytes=big))})
    pipe.xadd(STREAM, {EVENT_FIELD: encode_event(near)})
    pipe.execute()

    assert flush(tmp_path, redis_client, near) == 0  # found: not added again
    assert flush(tmp_path, redis_client, far) == 1  # beyond the limit: added again


def test_a_stream_a_sensors_worker_created_first_still_delivers_to_hooks(
    tmp_path: Path, redis_client: redis.Redis, redis_url: str
) -> None:
    # After Redis restarted empty, a sensor's worker recreated its group first; then the
    # dead run's last round trip ran there, its reply lost.
    async def sensor_group_first() -> None:
        client = connect_async(BusSettings(redis_url=redis_url))
        try:
            await Consumer(client, streams=[STREAM], group="sensor:s", consumer="w").ensure_group()
        finally:
            await client.aclose()

    asyncio.run(sensor_group_first())
    event = failed(1)
    lost_round_trip(redis_client, event)

    assert flush(tmp_path, redis_client, event) == 0
    assert delivered_to_hooks(redis_client) == 1


def test_every_chunk_of_a_spool_is_looked_up(tmp_path: Path, redis_client: redis.Redis) -> None:
    # The file kept what its process delivered (its backlog never emptied), then it died;
    # all of it is in Redis, its head further back than the look-back.
    events = [failed(seq) for seq in range(1, RESEND_LOOKBACK + 601)]
    pipe = redis_client.pipeline(transaction=False)
    for event in events:
        pipe.xadd(STREAM, {EVENT_FIELD: encode_event(event)})
    pipe.execute()

    # The 600 oldest are added again (the documented limit); every later chunk, the one
    # after them included, finds its events.
    assert flush(tmp_path, redis_client, *events) == 600


def test_a_flush_adds_only_the_events_not_already_in_redis(
    tmp_path: Path, redis_client: redis.Redis
) -> None:
    # The process died after its last round trip ran unanswered: the spool holds events
    # 1-3, and 1-2 are in the stream already.
    events = [failed(seq) for seq in (1, 2, 3)]
    for event in events[:2]:
        redis_client.xadd(STREAM, {EVENT_FIELD: encode_event(event)})

    assert flush(tmp_path, redis_client, *events) == 1
    assert seqs_in_stream(redis_client) == [1, 2, 3]
    assert flush_spool(redis_client, tmp_path, keys=KEYS) == 0  # the file is gone


def test_a_flush_half_done_before_is_finished_without_copies(
    tmp_path: Path, redis_client: redis.Redis
) -> None:
    # A first flush failed after its first chunk and three events of the second.
    events = [failed(seq) for seq in range(1, FLUSH_BATCH + 11)]
    pipe = redis_client.pipeline(transaction=False)
    for event in events[: FLUSH_BATCH + 3]:
        pipe.xadd(STREAM, {EVENT_FIELD: encode_event(event)})
    pipe.execute()

    assert flush(tmp_path, redis_client, *events) == 7
    assert seqs_in_stream(redis_client) == list(range(1, FLUSH_BATCH + 11))
