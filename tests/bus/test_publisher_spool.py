"""What waits for Redis is in the spool: every event of the backlog, whatever was
delivered of it before Redis failed again."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import redis

from bus import Keys, OpEvent, OpInfo, OpState, Publisher, RunInfo
from bus import publisher as publisher_module
from bus.redis_server import RedisServer
from bus.runs import FLUSH_BATCH, publish_args
from bus.spool import SpoolFile, read_spool
from tests.conftest import TEST_PREFIX

KEYS = Keys(prefix=TEST_PREFIX)
RUN = RunInfo(run_id="b" * 32, run_name="backlog-bbbbbbbb", job_name="backlog")


def op_event(seq: int) -> OpEvent:
    op_info = OpInfo(name="step", step_key=f"step_{seq}")
    return OpEvent(seq=seq, run=RUN, op=op_info, from_state=None, to_state=OpState.FAILED)


def spooled_seqs(path: Path) -> set[int]:
    return {int(payload.split(b'"seq":')[1].split(b",")[0]) for _, payload in read_spool(path)}


def test_events_queued_after_part_of_a_backlog_was_delivered_are_spooled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backlog = FLUSH_BATCH + 100
    with RedisServer(directory=tmp_path / "redis") as server:
        client = redis.Redis.from_url(server.url, socket_timeout=0.5)
        spool = SpoolFile(tmp_path / "spool", RUN.run_id)
        publisher = Publisher(client, keys=KEYS, spool=spool)
        pid = int(client.info("server")["process_id"])
        try:
            os.kill(pid, signal.SIGSTOP)  # Redis stops answering: everything waits
            for seq in range(1, backlog + 1):
                publisher.publish(op_event(seq))
            os.kill(pid, signal.SIGCONT)

            # Redis answers the backlog's first round trip, then stops answering again.
            calls: list[int] = []

            def stop_after_first(*args: object, **kwargs: object) -> object:
                calls.append(1)
                if len(calls) == 2:
                    os.kill(pid, signal.SIGSTOP)
                return publish_args(*args, **kwargs)  # type: ignore[arg-type]

            monkeypatch.setattr(publisher_module, "publish_args", stop_after_first)
            assert publisher.flush(force=True) is False
            assert publisher.backlog == backlog - FLUSH_BATCH
            for seq in range(backlog + 1, backlog + 11):  # a failure among them, say
                publisher.publish(op_event(seq))

            # A SIGKILL now must lose none of what is not in Redis.
            assert set(range(FLUSH_BATCH + 1, backlog + 11)) <= spooled_seqs(spool.path)
        finally:
            os.kill(pid, signal.SIGCONT)
            publisher.close()
            client.close()
