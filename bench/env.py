"""The benchmark's surroundings: a Redis, a key prefix, worker processes, load events.

Every benchmark runs under its own random key prefix, deleted at the end, so it can share
a Redis with anything else; by default it starts a private ``redis-server`` so that other
clients do not blur the numbers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import redis
from redis.typing import EncodableT, FieldT

from bus.children import stop_child
from bus.keys import HOOKS_GROUP
from bus.redis_server import RedisServer
from bus.runs import EVENT_FIELD, FIRST_SEND_FIELD
from engine import EngineSettings, JobDefinition

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")
#: An XRANGE / XREADGROUP entry without decode_responses: (entry id, {field: value}).
Entry = tuple[bytes, dict[bytes, bytes]]


def wait_until(
    check: Callable[[], T | None], *, timeout_s: float, what: str, poll_s: float = 0.001
) -> T:
    """Poll ``check`` until it returns something truthy.

    Raises:
        TimeoutError: after ``timeout_s`` seconds.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark waited {timeout_s}s for {what}: got {value!r}.")
        time.sleep(poll_s)


def rss_mb(pid: int, *, proc: Path = Path("/proc")) -> float:
    """The resident set size of process ``pid``, in MB (Linux ``/proc``)."""
    for line in (proc / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"process {pid!r} has no VmRSS line: got none. Is this Linux?")


@dataclass
class BenchEnv:
    """One benchmark run's Redis and key prefix, and the worker processes it started.

    Attributes:
        log_dir: where worker processes write their logs (kept when the run fails).
    """

    redis_url: str
    prefix: str = field(default_factory=lambda: f"hookbus-bench-{uuid.uuid4().hex[:8]}")
    log_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hookbus-bench-")))
    _workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client = redis.Redis.from_url(self.redis_url)
        self.settings = EngineSettings(redis_url=self.redis_url, key_prefix=self.prefix)

    def close(self, *, keep_logs: bool = False) -> None:
        """Stop every worker, delete every key under the prefix (and the logs, unless kept)."""
        for process in self._workers:
            stop_child(process)
        self._workers.clear()
        self.delete_keys()
        self.client.close()
        if not keep_logs:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    @contextlib.contextmanager
    def section(self, name: str) -> Iterator[BenchEnv]:
        """A fresh prefix for one section, so no section sees another's events or backlog."""
        sub = BenchEnv(self.redis_url, prefix=f"{self.prefix}-{name}", log_dir=self.log_dir)
        try:
            yield sub
        finally:
            sub.stop_workers()
            sub.delete_keys()
            sub.client.close()

    def delete_keys(self) -> None:
        """Delete every key under the prefix (sections' included)."""
        for key in self.client.scan_iter(match=f"*{self.prefix}*", count=1000):
            self.client.unlink(key)  # a ledger hour of a million records: freed off-thread

    def worker_env(self, consumer: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a ``hookbus worker`` process of this run."""
        return {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "HOOKBUS_REDIS_URL": self.redis_url,
            "HOOKBUS_KEY_PREFIX": self.prefix,
            "HOOKBUS_CONSUMER_NAME": consumer,
            # The shortest allowed. The ledger keeps records per hour, so they outlive the
            # run anyway: ``delete_keys`` removes them at the end.
            "HOOKBUS_IDEMPOTENCY_TTL_S": "60",
            **(extra or {}),
        }

    def start_worker(
        self, module: str, consumer: str, *, extra_env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """A ``hookbus worker MODULE`` process, returned once its heartbeat key exists."""
        with (self.log_dir / f"{consumer}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "sensors", "worker", module],
                env=self.worker_env(consumer, extra_env),
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )
        self._workers.append(process)
        key = self.settings.keys.worker_heartbeat(consumer)

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(
                    f"worker {consumer!r} exited at start: got code {process.returncode}. "
                    f"Run: python -m sensors worker {module}"
                )
            return bool(self.client.exists(key))

        wait_until(ready, timeout_s=30, what=f"worker {consumer} to start", poll_s=0.01)
        return process

    def stop_workers(self) -> None:
        """Stop every worker started so far."""
        for process in self._workers:
            stop_child(process)
        self._workers.clear()

    def template(self, job_def: JobDefinition, *, to_state: str) -> tuple[str, bytes]:
        """Run ``job_def`` once and return (stream, payload) of its op event into ``to_state``."""
        result = job_def.execute_in_process(raise_on_error=False, settings=self.settings)
        stream = self.settings.keys.stream_for_run(result.run_id)
        for _, fields in entries(self.client.xrange(stream)):
            event = json.loads(fields[EVENT_FIELD])
            if (
                event["run"]["run_id"] == result.run_id
                and event["type"] == "op"
                and event["to_state"] == to_state
            ):
                return stream, fields[EVENT_FIELD]
        raise RuntimeError(f"job {job_def.name!r} published no op event into {to_state!r}.")

    def hooks_group(self, stream: str) -> dict[str, Any]:
        """``XINFO GROUPS`` of the hooks group of ``stream`` (``pending``, ``lag``…)."""
        groups = cast(list[dict[Any, Any]], self.client.xinfo_groups(stream))
        for group in groups:
            if _text(group["name"]) == HOOKS_GROUP:
                return {_text(key): value for key, value in group.items()}
        raise RuntimeError(f"stream {stream!r} has no {HOOKS_GROUP!r} group.")


def entries(reply: object) -> list[Entry]:
    """An XRANGE/XREVRANGE reply, typed (redis-py types it as ``Any``)."""
    return cast(list[Entry], reply)


def read_entries(reply: object) -> list[tuple[bytes, list[Entry]]]:
    """An XREADGROUP reply, typed: ``[(stream, [(entry id, fields)])]``."""
    return cast(list[tuple[bytes, list[Entry]]], reply or [])


def get_float(client: redis.Redis, key: str) -> float | None:
    """A key holding a number (a ``time.time()`` or a pid), or ``None`` if absent."""
    raw = cast(bytes | None, client.get(key))
    return None if raw is None else float(raw)


def clones(payload: bytes, count: int) -> Iterator[bytes]:
    """``count`` copies of an event, each with a fresh event id (so each is handled)."""
    old_id = json.loads(payload)["event_id"].encode()
    for _ in range(count):
        yield payload.replace(old_id, uuid.uuid4().hex.encode(), 1)


def publish_many(
    client: redis.Redis,
    stream: str,
    payloads: Sequence[bytes] | Iterator[bytes],
    *,
    batch: int = 1000,
    max_len: int | None = None,
) -> int:
    """XADD every payload to ``stream``, pipelined ``batch`` at a time; return the count.

    Each entry is marked as its event's first send, as the engine's publisher marks an
    event that went out on its first attempt (the usual case): the hooks group then runs
    its hooks without asking the ledger, as it does for a healthy pipeline's events.
    """
    sent = 0
    pipe = client.pipeline(transaction=False)
    for payload in payloads:
        fields: dict[FieldT, EncodableT] = {EVENT_FIELD: payload, FIRST_SEND_FIELD: b"1"}
        pipe.xadd(stream, fields, maxlen=max_len, approximate=True)
        sent += 1
        if sent % batch == 0:
            pipe.execute()
    pipe.execute()
    return sent


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """A private ``redis-server`` for the run; yields its URL."""
    with RedisServer() as server:
        yield server.url


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
