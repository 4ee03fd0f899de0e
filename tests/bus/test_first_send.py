"""The publisher marks an entry as a first send only when no other entry can carry its event."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import redis

from bus import Keys, OpEvent, OpInfo, OpState, Publisher, RunInfo
from bus.events import decode_event
from bus.publisher import RETRY_FIRST_DELAY_S
from bus.redis_server import RedisServer
from bus.runs import EVENT_FIELD, FIRST_SEND_FIELD
from tests.conftest import TEST_PREFIX
from tests.streams import read_stream

KEYS = Keys(prefix=TEST_PREFIX)
RUN = RunInfo(run_id="f" * 32, run_name="first-ffffffff", job_name="first")


def op_event(seq: int) -> OpEvent:
    op_info = OpInfo(name="step", step_key=f"step_{seq}")
    return OpEvent(seq=seq, run=RUN, op=op_info, from_state=None, to_state=OpState.FAILED)


def entries(client: redis.Redis) -> list[tuple[int, bool]]:
    """Each entry's event seq, and whether the entry carries the first-send mark."""
    found = []
    for _, fields in read_stream(client, KEYS.stream_for_run(RUN.run_id)):
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


def test_an_event_whose_round_trip_was_cut_short_goes_again_unmarked(tmp_path: Path) -> None:
    with RedisServer(directory=tmp_path / "redis") as server:
        client = redis.Redis.from_url(server.url, socket_timeout=5)
        publisher = Publisher(client, keys=KEYS)
        redis_pid = int(client.info("server")["process_id"])

        def interrupt(_signum: int, _frame: object) -> None:
            raise Interrupted

        previous = signal.signal(signal.SIGALRM, interrupt)
        try:
            assert publisher.publish(op_event(1))
            os.kill(redis_pid, signal.SIGSTOP)  # takes the next script, answers nothing yet
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            with pytest.raises(Interrupted):
                publisher.publish(op_event(2))  # a failure: sent before publish returns
            os.kill(redis_pid, signal.SIGCONT)  # runs it now: event 2 is in the stream
            assert publisher.publish(op_event(3))  # 2 goes again, with 3

            # The second copy of 2 is no first send: the ledger checks it.
            assert entries(client) == [(1, True), (2, True), (2, False), (3, False)]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            os.kill(redis_pid, signal.SIGCONT)
            publisher.close()
            client.close()
