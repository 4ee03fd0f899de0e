"""The local spool: one locked file per live run, read back in order, torn lines skipped,
flushed without adding what Redis already holds."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import redis

from bus import Keys, OpEvent, OpInfo, OpState, RunInfo
from bus.events import encode_event
from bus.runs import EVENT_FIELD, FLUSH_BATCH
from bus.spool import SpoolFile, flush_spool, read_spool, unlocked_spool_files
from tests.conftest import TEST_PREFIX
from tests.streams import read_stream

KEYS = Keys(prefix=TEST_PREFIX)
RUN = RunInfo(run_id="a" * 32, run_name="spooled-aaaaaaaa", job_name="spooled")


def test_a_live_runs_file_is_left_alone_and_taken_once_its_writer_is_gone(tmp_path: Path) -> None:
    spool = SpoolFile(tmp_path, "run-1")
    spool.append("s", b'{"seq": 1}', fsync=False)
    spool.append("s", b'{"seq": 2}', fsync=True)

    assert [path for path, _ in unlocked_spool_files(tmp_path)] == []
    spool.close()
    assert [path.name for path, _ in unlocked_spool_files(tmp_path)] == ["run-1.jsonl"]
    assert read_spool(tmp_path / "run-1.jsonl") == [("s", b'{"seq": 1}'), ("s", b'{"seq": 2}')]
    assert repr(spool) == f"<SpoolFile path={str(tmp_path / 'run-1.jsonl')!r} lines=2>"


def test_a_torn_last_line_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "run-2.jsonl"
    path.write_text('{"stream": "s", "event": "{}"}\n{"stream": "s", "ev')

    with caplog.at_level(logging.WARNING):
        assert read_spool(path) == [("s", b"{}")]
    assert "spool line skipped" in caplog.text and "line=2" in caplog.text


def test_discard_removes_the_file(tmp_path: Path) -> None:
    spool = SpoolFile(tmp_path, "run-3")
    spool.append("s", b"{}", fsync=False)
    spool.discard()

    assert not (tmp_path / "run-3.jsonl").exists()
    assert spool.lines == 0


def test_a_flush_adds_only_the_events_not_already_in_redis(
    tmp_path: Path, redis_client: redis.Redis
) -> None:
    # The process died after its last round trip ran unanswered: the spool holds events
    # 1-3, and 1-2 are in the stream already.
    stream = KEYS.stream_for_run(RUN.run_id)
    events = [op_event(seq) for seq in (1, 2, 3)]
    for event in events[:2]:
        redis_client.xadd(stream, {EVENT_FIELD: encode_event(event)})
    spool = SpoolFile(tmp_path, RUN.run_id)
    for event in events:
        spool.append(stream, encode_event(event), fsync=False)
    spool.close()

    assert flush_spool(redis_client, tmp_path, keys=KEYS) == 1
    assert [seq_of(fields) for _, fields in read_stream(redis_client, stream)] == [1, 2, 3]
    assert flush_spool(redis_client, tmp_path, keys=KEYS) == 0  # the file is gone


def test_a_flush_half_done_before_is_finished_without_copies(
    tmp_path: Path, redis_client: redis.Redis
) -> None:
    # A first flush failed after its first chunk and three events of the second.
    stream = KEYS.stream_for_run(RUN.run_id)
    events = [op_event(seq) for seq in range(1, FLUSH_BATCH + 11)]
    pipe = redis_client.pipeline(transaction=False)
    for event in events[: FLUSH_BATCH + 3]:
        pipe.xadd(stream, {EVENT_FIELD: encode_event(event)})
    pipe.execute()
    spool = SpoolFile(tmp_path, RUN.run_id)
    for event in events:
        spool.append(stream, encode_event(event), fsync=False)
    spool.close()

    assert flush_spool(redis_client, tmp_path, keys=KEYS) == 7
    seqs = [seq_of(fields) for _, fields in read_stream(redis_client, stream)]
    assert seqs == list(range(1, FLUSH_BATCH + 11))


def seq_of(fields: dict[bytes, bytes]) -> int:
    return int(json.loads(fields[EVENT_FIELD])["seq"])


def op_event(seq: int) -> OpEvent:
    return OpEvent(
        seq=seq,
        run=RUN,
        op=OpInfo(name="step", step_key=f"step_{seq}"),
        from_state=None,
        to_state=OpState.FAILED,
    )
