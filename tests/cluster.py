"""A real three-node Redis Cluster on loopback ports, for tests (no replicas, no disk)."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bus.redis_server import find_redis_server, free_port
from tests.processes import wait_until


@contextmanager
def redis_cluster(directory: Path, *, nodes: int = 3) -> Iterator[str]:
    """Start ``nodes`` cluster-enabled redis-servers, join them, yield a node's URL."""
    binary = find_redis_server()
    cli = shutil.which("redis-cli") or str(Path(binary).with_name("redis-cli"))
    ports = _cluster_ports(nodes)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            node_dir = directory / f"node-{port}"
            node_dir.mkdir(parents=True)
            processes.append(
                subprocess.Popen(
                    [
                        binary,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(node_dir),
                        "--loglevel",
                        "warning",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in ports:
            wait_until(
                lambda port=port: (
                    subprocess.run(  # type: ignore[misc]
                        [cli, "-p", str(port), "ping"], capture_output=True
                    ).stdout.strip()
                    == b"PONG"
                ),
                what=f"cluster node {port}",
            )
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        url = f"redis://127.0.0.1:{ports[0]}/0"
        wait_until(lambda: _cluster_ok(cli, ports), timeout_s=20, what="cluster_state:ok")
        yield url
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


def _cluster_ports(count: int) -> list[int]:
    """Free ports whose cluster bus port (port + 10000) is free and valid too."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port <= 55535 and port not in ports and _bindable(port + 10000):
            ports.append(port)
    return ports


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cluster_ok(cli: str, ports: list[int]) -> bool:
    # Ask with redis-cli, not a RedisCluster client: one built too early leaks sockets.
    return all(
        b"cluster_state:ok"
        in subprocess.run([cli, "-p", str(port), "cluster", "info"], capture_output=True).stdout
        for port in ports
    )
