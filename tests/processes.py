"""Starting real worker processes for tests, and waiting for things without sleeping blind."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import redis

from bus.children import stop_child
from bus.keys import Keys

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def wait_until(check: Callable[[], T], *, timeout_s: float = 10.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.01)


@contextmanager
def worker_process(
    module: str,
    *,
    redis_url: str,
    prefix: str,
    consumer: str = "proc-worker",
    env: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A ``hookbus worker MODULE`` subprocess, ready (heartbeat seen) when yielded."""
    child_env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOOKBUS_REDIS_URL": redis_url,
        "HOOKBUS_KEY_PREFIX": prefix,
        "HOOKBUS_CONSUMER_NAME": consumer,
        "HOOKBUS_BLOCK_MS": "200",
        **(env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "sensors", "worker", module], env=child_env, cwd=ROOT
    )
    client = redis.Redis.from_url(redis_url)
    try:
        key = Keys(prefix=prefix).worker_heartbeat(consumer)

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"worker exited early with code {process.returncode}")
            return bool(client.exists(key))

        wait_until(ready, timeout_s=20, what=f"worker {consumer} to start")
        yield process
    finally:
        client.close()
        stop_child(process)
