"""Liveness checks for container orchestrators (``hookbus worker --check``)."""

from __future__ import annotations

import socket

import redis

from bus.keys import Keys


def worker_alive_on_host(client: redis.Redis, keys: Keys, *, host: str | None = None) -> bool:
    """Whether a worker on ``host`` (default: this one) has a live heartbeat key.

    Worker consumer names default to ``<host>-<pid>``, so a health check in the worker's
    container (same host name, different pid) finds its worker by the host part.
    """
    host = host or socket.gethostname()
    pattern = keys.worker_heartbeat(f"{host}-*")
    return any(True for _ in client.scan_iter(match=pattern, count=500))
