"""Shared fixtures: a real Redis (never mocked), clean before and after every test."""

from __future__ import annotations

import gc
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from engine.settings import EngineSettings
from sensors.settings import WorkerSettings

#: Tests use this Redis; each pytest-xdist worker takes its own database index below it.
TEST_REDIS_URL = os.environ.get("HOOKBUS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
#: Every test key lives under this prefix.
TEST_PREFIX = "hookbus-test"
# A shell starts a command run in the background (``nohup ... &``, some CI runners) with
# SIGINT ignored, and Python then raises no KeyboardInterrupt, here or in the processes
# the tests start: the Ctrl-C tests need Ctrl-C back. (A handled signal is reset to its
# default in a child at exec; an ignored one stays ignored.)
signal.signal(signal.SIGINT, signal.default_int_handler)

START_REDIS_HINT = (
    "Start one with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' "
    "(or run bash .ci/run, which starts it), or point HOOKBUS_TEST_REDIS_URL at one."
)


@pytest.fixture(scope="session")
def redis_url(worker_id: str) -> str:
    """This xdist worker's Redis database: ``/15`` for gw0 (or no xdist), ``/14`` for gw1 …"""
    base, _, db = TEST_REDIS_URL.rpartition("/")
    index = 0 if worker_id == "master" else int(worker_id.removeprefix("gw"))
    return f"{base}/{int(db) - index}"


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"no Redis answers at {redis_url}: {exc}. {START_REDIS_HINT}")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def engine_settings(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> EngineSettings:
    return EngineSettings(redis_url=redis_url, key_prefix=TEST_PREFIX, spool_dir=tmp_path / "spool")


@pytest.fixture
def worker_settings(redis_url: str, redis_client: redis.Redis) -> WorkerSettings:
    return WorkerSettings(
        redis_url=redis_url, key_prefix=TEST_PREFIX, consumer_name="test-worker", block_ms=100
    )


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """Undo ``tune_garbage_collector`` (frozen objects, threshold) after a test calls it."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
