"""Redis clients: the worker's asyncio pool under load, and how connections name the driver."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from bus.connection import ASYNC_POOL_SIZE, connect, connect_async, kernel_liveness_options
from bus.settings import BusSettings


def test_commands_beyond_the_pool_size_wait_for_a_connection(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # Each BLPOP holds its connection for 0.1 s; 1.5x the pool size must queue, not fail
    # (redis-py's default pool raised MaxConnectionsError past its 100th connection).
    async def main() -> list[object]:
        client = connect_async(BusSettings(redis_url=redis_url))
        try:
            return await asyncio.gather(
                *(client.blpop(["hookbus-test:empty"], timeout=0.1) for _ in range(150))
            )
        finally:
            await client.aclose()

    assert ASYNC_POOL_SIZE < 150
    assert asyncio.run(main()) == [None] * 150


def test_clients_name_the_driver_as_redis_py_does_without_reading_package_metadata(
    redis_url: str,
) -> None:
    # redis-py's default reads its version from the package metadata for every new
    # connection (0.7 ms each, on the way to an engine's first event); ours is given once.
    settings = BusSettings(redis_url=redis_url)
    client = connect(settings)
    try:
        info = client.connection_pool.connection_kwargs["driver_info"]
        assert (info.formatted_name, info.lib_version) == ("redis-py", redis.__version__)
        assert client.ping()
    finally:
        client.close()


def test_the_worker_client_leaves_liveness_to_the_kernel_within_the_redis_timeout(
    redis_url: str,
) -> None:
    # No per-command socket timeout (a task and a timer per command in redis-py), but the
    # kernel fails unacknowledged commands and finds dead idle peers within the timeout.
    async def main() -> tuple[float | None, dict[int, int], int]:
        client = connect_async(
            BusSettings(redis_url=redis_url, redis_timeout_s=3), kernel_liveness=True
        )
        try:
            await client.ping()
            kwargs = client.connection_pool.connection_kwargs
            connection = await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
            try:
                sock = connection._writer.get_extra_info("socket")
                user_timeout_ms = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)
            finally:
                await client.connection_pool.release(connection)
            return kwargs["socket_timeout"], kwargs["socket_keepalive_options"], user_timeout_ms
        finally:
            await client.aclose()

    socket_timeout, options, user_timeout_ms = asyncio.run(main())
    assert socket_timeout is None
    assert options == kernel_liveness_options(3)
    assert options[socket.TCP_KEEPIDLE] == 3 and options[socket.TCP_KEEPCNT] == 3
    assert user_timeout_ms == 3000  # read back from the live socket


def test_other_asyncio_clients_keep_a_socket_timeout(redis_url: str) -> None:
    # The CLI's silences and the watcher's lease: a stopped Redis must not hang them.
    client = connect_async(BusSettings(redis_url=redis_url, redis_timeout_s=2))
    assert client.connection_pool.connection_kwargs["socket_timeout"] == 2


def test_the_worker_client_works_over_a_unix_socket(tmp_path: Path) -> None:
    # No TCP options on a unix socket: redis-py's unix connection refuses them.
    path = tmp_path / "redis.sock"
    server = subprocess.Popen(
        [
            _redis_server(),
            "--port",
            "0",
            "--unixsocket",
            str(path),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        # The socket file appears at bind(), a moment before the server listens on it.
        deadline = time.monotonic() + 10
        while not _answers(path):
            assert time.monotonic() < deadline, "redis-server did not listen on its unix socket"
            time.sleep(0.01)

        async def main() -> tuple[bool, object]:
            settings = BusSettings(redis_url=f"unix://{path}", redis_timeout_s=2)
            client = connect_async(settings, kernel_liveness=True)
            try:
                return await client.ping(), client.connection_pool.connection_kwargs[
                    "socket_timeout"
                ]
            finally:
                await client.aclose()

        assert asyncio.run(main()) == (True, 2)
    finally:
        server.terminate()
        server.wait(timeout=10)


def _answers(path: Path) -> bool:
    probe = redis.Redis(unix_socket_path=str(path), socket_connect_timeout=1)
    try:
        return bool(probe.ping())
    except redis.ConnectionError:
        return False
    finally:
        probe.close()


def _redis_server() -> str:
    found = shutil.which("redis-server")
    assert found, "redis-server is not on PATH: apt-get install -y redis-server"
    return found
