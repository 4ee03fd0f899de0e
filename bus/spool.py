"""The local spool: events that Redis could not take yet, kept on disk, in order.

One append-only JSON-lines file per run (``<spool_dir>/<run_id>.jsonl``). The running
engine holds an exclusive ``flock`` on its file, so that another process flushing the
spool (``hookbus spool flush``, or the next ``hookbus run``) leaves a live run's file alone
and picks it up only once that process has ended, however it ended. Failure and terminal
events are fsynced before the engine moves on; the rest are written and flushed to the OS.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final

import redis

from bus.groups import ensure_group
from bus.keys import HOOKS_GROUP, Keys
from bus.resends import FIND_SCRIPT
from bus.runs import FLUSH_BATCH, PUBLISH_SCRIPT, publish_args

logger = logging.getLogger(__name__)

#: The spool file's suffix.
SPOOL_SUFFIX: Final = ".jsonl"


class SpoolFile:
    """The spool file of one run, locked by its creator for as long as it is open.

    Args:
        directory: the spool directory (``EngineSettings.spool_dir``); created if missing.
        run_id: the run whose events it holds.
    """

    def __init__(self, directory: Path, run_id: str) -> None:
        self.path = directory / f"{run_id}{SPOOL_SUFFIX}"
        self._file: IO[str] | None = None
        self.lines = 0

    def __repr__(self) -> str:
        return f"<SpoolFile path={str(self.path)!r} lines={self.lines}>"

    def append(self, stream: str, payload: bytes, *, fsync: bool) -> None:
        """Append one event for ``stream``; fsync it when ``fsync`` (failure, terminal)."""
        if self._file is None:
            self._file = self._open_locked()
        line = json.dumps({"stream": stream, "event": payload.decode()})
        self._file.write(line + "\n")
        self._file.flush()
        if fsync:
            os.fsync(self._file.fileno())
        self.lines += 1

    def _open_locked(self) -> IO[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            handle = self.path.open("a", encoding="utf-8")
            fcntl.flock(handle, fcntl.LOCK_EX)
            # A flusher may have taken the lock between our open and flock, published the
            # (empty) file and unlinked it: then start a new file rather than write to a
            # file nobody will ever read.
            if _is_still(self.path, handle):
                return handle
            handle.close()

    def discard(self) -> None:
        """Everything spooled is in Redis now: remove the file (and release the lock)."""
        if self._file is None:
            return
        self.path.unlink(missing_ok=True)
        self._file.close()
        self._file = None
        self.lines = 0

    def close(self) -> None:
        """Release the lock and keep the file for a later flush."""
        if self._file is not None:
            self._file.close()
            self._file = None


def read_spool(path: Path) -> list[tuple[str, bytes]]:
    """The ``(stream, payload)`` entries of one spool file, in order.

    A torn last line (the process died while writing it) is skipped with a warning.
    """
    entries: list[tuple[str, bytes]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            item = json.loads(line)
            entries.append((str(item["stream"]), str(item["event"]).encode()))
        except (ValueError, KeyError, TypeError):
            logger.warning("spool line skipped path=%s line=%d (torn or invalid)", path, number)
    return entries


def unlocked_spool_files(directory: Path) -> Iterator[tuple[Path, IO[str]]]:
    """Spool files no live process holds, each yielded while we hold its lock."""
    if not directory.is_dir():
        return
    for path in sorted(directory.glob(f"*{SPOOL_SUFFIX}")):
        try:
            handle = path.open("r", encoding="utf-8")
        except FileNotFoundError:  # another flusher published and removed it meanwhile
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        if not _is_still(path, handle):  # flushed by another between our open and lock
            handle.close()
            continue
        try:
            yield path, handle
        finally:
            handle.close()


def _is_still(path: Path, handle: IO[str]) -> bool:
    """Whether ``path`` still names the file ``handle`` has open."""
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


def flush_spool(
    client: redis.Redis,
    directory: Path,
    *,
    last_seqs: dict[str, int] | None = None,
    keys: Keys | None = None,
) -> int:
    """Publish the spool files no live process holds, each in order, then delete them.

    Used by ``hookbus spool flush``, by ``hookbus run`` before it starts a run, and by its
    supervisor after the child ended. An event already among its stream's newest entries
    (its process's last round trip ran, unanswered) is not added again (``bus.resends``);
    one further back is, and workers run each (event, hook) once (``bus.ledger``).

    Args:
        last_seqs: filled with the ``seq`` of the last published event per run id (the
            supervisor continues a dead child's sequence from it).
        keys: when given, the spool of a run whose crash was already published (its
            tombstone ``Keys.run_crashed`` is set) is dropped with a warning instead: its
            events would follow the run's terminal ``crashed``.

    Returns:
        How many events were added.

    Raises:
        redis.RedisError: Redis did not answer (the files stay for the next flush).
    """
    total = 0
    for path, _handle in unlocked_spool_files(directory):
        entries = read_spool(path)
        if keys is not None and client.exists(keys.run_crashed(path.stem)):
            logger.warning(
                "spool of run_id=%s dropped: the run was declared crashed while its events "
                "waited here (its crash is published); events=%d",
                path.stem,
                len(entries),
            )
            path.unlink()
            continue
        for stream in dict.fromkeys(stream for stream, _ in entries):
            # Redis may have lost the stream (restarted without persistence).
            ensure_group(client, stream, HOOKS_GROUP)
        added = _add_missing(client, entries)
        path.unlink()
        total += added
        if last_seqs is not None and entries:
            last_seqs[path.stem] = _seq_of(entries[-1][1])
        logger.info(
            "spool flushed path=%s events=%d already_in_redis=%d",
            path,
            added,
            len(entries) - added,
        )
    return total


def _add_missing(client: redis.Redis, entries: list[tuple[str, bytes]]) -> int:
    """Add the spool's events that are not in Redis yet, in order; return how many.

    Any may be there already: its process's last round trip may have run unanswered, an
    earlier flush may have failed half-way, and the file keeps what its process delivered
    until its backlog was empty. So the whole file is looked up first (``bus.resends``,
    3-11 ms of Redis per chunk that finds nothing), then what is missing is added.
    (Looking up and adding chunk by chunk, the first chunk's adds would push the next
    chunk's events out of the look-back.) The file is ours alone, locked, meanwhile.
    """
    find = client.register_script(FIND_SCRIPT)
    publish = client.register_script(PUBLISH_SCRIPT)
    present: set[int] = set()
    for start in range(0, len(entries), FLUSH_BATCH):
        chunk = entries[start : start + FLUSH_BATCH]
        found = find(keys=[stream for stream, _ in chunk], args=[payload for _, payload in chunk])
        present.update(start + int(index) - 1 for index in found)
    missing = [entry for index, entry in enumerate(entries) if index not in present]
    for start in range(0, len(missing), FLUSH_BATCH):
        script_keys, args = publish_args(
            None, missing[start : start + FLUSH_BATCH], None, timeout_s=0, max_len=None
        )
        publish(keys=script_keys, args=args)
    return len(missing)


def _seq_of(payload: bytes) -> int:
    try:
        return int(json.loads(payload)["seq"])
    except (ValueError, KeyError, TypeError):
        return 0
