"""The publisher marks an entry as a first send only when no other entry can carry its event."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bus import Keys, OpEvent, OpInfo, OpState, Publisher, RunInfo
from bus.connection import connect, may_resend
from bus.events import decode_event
from bus.publisher import RETRY_FIRST_DELAY_S
from bus.redis_server import RedisServer
from bus.resends import RESEND_LOOKBACK
from bus.runs import EVENT_FIELD, FIRST_SEND_FIELD
from bus.settings import BusSettings
from tests.conftest import TEST_PREFIX
from tests.streams import read_stream

KEYS = Keys(prefix=TEST_PREFIX)
RUN = RunInfo(run_id="f" * 32, run_name="first-ffffffff", job_name="first")


def op_event(seq: int) -> OpEvent:
    op_info = OpInfo(name="step", step_key=f"step_{seq}")
    return OpEvent(seq=seq, run=RUN, op=op_info, from_state=None, to_state=OpState.FAILED)


def entries(client: redis.Redis, *, skip_others: bool = False) -> list[tuple[int, bool]]:
    """Each entry's event seq, and whether the entry carries the first-send mark
    (``skip_others``: leave out entries that are not this run's events)."""
    found = []
    for _, fields in read_stream(client, KEYS.stream_for_run(RUN.run_id)):
        if skip_others and RUN.run_id.encode() not in fields[EVENT_FIELD]:
            continue
        event = decode_event(fields[EVENT_FIELD])
        assert isinstance(event, OpEvent)
        found.append((event.seq, fields.get(FIRST_SEND_FIELD) == b"1"))
    return found


def marks(client: redis.Redis) -> dict[int, bool]:
    """Each published event's seq, and whether its entry carries the first-send mark."""
    return dict(entries(client))


class Interrupted(Exception):
    """Raised in the main thread by a timer, as a signal handler would (SIGTERM, Ctrl-C)."""


def test_only_events_sent_before_any_failure_are_marked_as_first_sends(tmp_path: Path) -> None:
    with RedisServer(appendonly=True, directory=tmp_path / "redis") as server:
        client = redis.Redis.from_url(server.url, socket_timeout=0.5)
        publisher = Publisher(client, keys=KEYS)
        try:
            assert publisher.publish(op_event(1))
            server.stop()
            assert publisher.publish(op_event(2)) is False  # unanswered: it may be resent
            server.start()
            time.sleep(RETRY_FIRST_DELAY_S)  # the publisher's backoff after the failure
            assert publisher.publish(op_event(3))  # goes out with 2, in one round trip
            assert publisher.publish(op_event(4))

            assert marks(client) == {1: True, 2: False, 3: False, 4: True}
        finally:
            publisher.close()
            client.close()


@contextlib.contextmanager
def stopped_redis() -> Iterator[tuple[redis.Redis, int]]:
    """A private Redis and its pid, to SIGSTOP: it then takes commands but answers none."""
    with (
        tempfile.TemporaryDirectory() as directory,
        RedisServer(directory=Path(directory)) as server,
    ):
        client = redis.Redis.from_url(server.url, socket_timeout=5)
        pid = int(client.info("server")["process_id"])
        try:
            yield client, pid
        finally:
            os.kill(pid, signal.SIGCONT)
            client.close()


@contextlib.contextmanager
def interrupted_after(delay_s: float) -> Iterator[None]:
    """Raise ``Interrupted`` in this (the main) thread after ``delay_s``, as a signal
    handler would. SIGUSR2 from a timer thread: SIGALRM is pytest-timeout's."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGUSR2, interrupt)
    timer = threading.Timer(delay_s, signal.pthread_kill, (threading.get_ident(), signal.SIGUSR2))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR2, previous)


def cut_short(publisher: Publisher, redis_pid: int, event: OpEvent) -> None:
    """Publish ``event`` while Redis takes the round trip but answers nothing, until the
    call is interrupted; then let Redis run it: the event is in the stream, unanswered."""
    os.kill(redis_pid, signal.SIGSTOP)
    with pytest.raises(Interrupted), interrupted_after(0.2):
        publisher.publish(event)  # a failure: sent before publish returns
    os.kill(redis_pid, signal.SIGCONT)


def test_an_event_whose_round_trip_was_cut_short_is_not_added_again() -> None:
    with stopped_redis() as (client, redis_pid):
        publisher = Publisher(client, keys=KEYS)
        try:
            assert publisher.publish(op_event(1))
            cut_short(publisher, redis_pid, op_event(2))
            assert publisher.publish(op_event(3))  # 2 is resent with 3: found, not added

            # What follows an unanswered round trip is no first send: the ledger checks it.
            assert entries(client) == [(1, True), (2, True), (3, False)]
        finally:
            publisher.close()


def test_a_resend_whose_original_is_further_back_than_the_look_back_adds_it_again() -> None:
    with stopped_redis() as (client, redis_pid):
        publisher = Publisher(client, keys=KEYS)
        try:
            assert publisher.publish(op_event(1))
            cut_short(publisher, redis_pid, op_event(2))
            stream = KEYS.stream_for_run(RUN.run_id)
            pipe = client.pipeline(transaction=False)
            for _ in range(RESEND_LOOKBACK):  # other runs' events, on a busy shard
                pipe.xadd(stream, {EVENT_FIELD: b'{"event_id":"other"}'})
            pipe.execute()
            assert publisher.publish(op_event(3))

            # The documented limit: the ledger deals with the copy, as for a replay.
            assert [seq for seq, _ in entries(client, skip_others=True)] == [1, 2, 2, 3]
        finally:
            publisher.close()


def test_a_crash_declared_while_a_batch_is_in_flight_raises_nothing() -> None:
    with stopped_redis() as (client, redis_pid):
        publisher = Publisher(client, keys=KEYS)
        outcome: list[object] = []
        try:
            os.kill(redis_pid, signal.SIGSTOP)
            sender = threading.Thread(target=lambda: outcome.append(publisher.publish(op_event(1))))
            sender.start()
            time.sleep(0.2)  # the batch is on its way, unanswered
            publisher.declared_crashed(RUN.run_id)  # as the heartbeat's thread does
            os.kill(redis_pid, signal.SIGCONT)
            sender.join(timeout=10)

            assert outcome == [True]  # publish never raises: not IndexError on a cleared backlog
            assert publisher.backlog == 0
        finally:
            publisher.close()


def test_a_client_that_resends_on_its_own_gets_no_marks(
    redis_url: str,
    redis_client: redis.Redis,  # the database emptied before and after
) -> None:
    resending = redis.Redis.from_url(redis_url, retry=Retry(NoBackoff(), 3))
    assert may_resend(resending)
    assert not may_resend(connect(BusSettings(redis_url=redis_url)))
    publisher = Publisher(resending, keys=KEYS)
    try:
        assert publisher.publish(op_event(1))
        assert entries(resending) == [(1, False)]
    finally:
        publisher.close()
        resending.close()
