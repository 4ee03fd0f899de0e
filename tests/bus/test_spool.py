"""The local spool: one locked file per live run, read back in order, torn lines skipped.
(Its flush, which adds only what Redis lacks, is in ``test_resends.py``.)"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bus.spool import SpoolFile, read_spool, unlocked_spool_files


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
