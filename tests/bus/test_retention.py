"""Stream retention: by age, never past what a consumer group still needs; a loud hard cap."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
import redis
import redis.asyncio as aioredis

from bus.retention import TrimResult, needed_from, trim_by_age, trim_events

STREAM = "retention-test:events"


def fill(client: redis.Redis, count: int) -> list[str]:
    return [client.xadd(STREAM, {b"n": str(n).encode()}).decode() for n in range(count)]  # type: ignore[union-attr]


def trim(redis_url: str, *, max_age_s: float = 0.0, max_len: int = 1000) -> TrimResult:
    async def run() -> TrimResult:
        client = aioredis.Redis.from_url(redis_url)
        try:
            now_ms = int(time.time() * 1000) + 1000
            return await trim_events(
                client, STREAM, max_age_s=max_age_s, max_len=max_len, now_ms=now_ms
            )
        finally:
            await client.aclose()

    return asyncio.run(run())


def remaining(client: redis.Redis) -> list[str]:
    return [entry_id.decode() for entry_id, _ in client.xrange(STREAM)]  # type: ignore[union-attr]


def test_old_entries_go_but_not_those_a_group_has_pending(
    redis_url: str, redis_client: redis.Redis
) -> None:
    ids = fill(redis_client, 10)
    redis_client.xgroup_create(STREAM, "hooks", id="0")
    redis_client.xreadgroup("hooks", "w1", {STREAM: ">"}, count=6)
    redis_client.xack(STREAM, "hooks", *ids[:3])  # 3..5 still pending

    result = trim(redis_url)

    assert remaining(redis_client) == ids[3:]
    assert (result.removed, result.held_by, result.forced) == (3, ("hooks",), 0)


def test_a_group_with_nothing_pending_keeps_what_it_has_not_read(
    redis_url: str, redis_client: redis.Redis
) -> None:
    ids = fill(redis_client, 10)
    redis_client.xgroup_create(STREAM, "hooks", id="0")
    redis_client.xgroup_create(STREAM, "sensor:report", id=ids[6])
    redis_client.xreadgroup("hooks", "w1", {STREAM: ">"})
    redis_client.xack(STREAM, "hooks", *ids)

    trim(redis_url)

    assert remaining(redis_client) == ids[6:]


def test_entries_younger_than_the_age_limit_stay(redis_url: str, redis_client: redis.Redis) -> None:
    ids = fill(redis_client, 5)
    assert trim(redis_url, max_age_s=3600).removed == 0
    assert remaining(redis_client) == ids


def test_the_hard_cap_trims_unhandled_entries_and_says_so(
    redis_url: str, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    ids = fill(redis_client, 10)
    redis_client.xgroup_create(STREAM, "sensor:stopped", id="0")

    with caplog.at_level(logging.ERROR, logger="bus.retention"):
        result = trim(redis_url, max_len=4)

    assert remaining(redis_client) == ids[6:]
    assert (result.forced, result.held_by) == (6, ("sensor:stopped",))
    assert "over its hard cap max_len=4" in caplog.text
    assert "sensor:stopped" in caplog.text


def test_dead_letters_are_trimmed_by_age(redis_url: str, redis_client: redis.Redis) -> None:
    fill(redis_client, 3)

    async def run() -> int:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await trim_by_age(
                client, STREAM, max_age_s=60, now_ms=int(time.time() * 1000) + 61_000
            )
        finally:
            await client.aclose()

    assert asyncio.run(run()) == 3


def test_a_new_group_on_an_empty_stream_holds_nothing_back(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def scenario() -> tuple[int, tuple[str, ...]]:
        client = aioredis.Redis.from_url(redis_url)
        try:
            await client.xgroup_create("s", "hooks", id="0", mkstream=True)
            result = await trim_events(client, "s", max_age_s=60, max_len=100, now_ms=10**13)
            return result.removed, result.held_by
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == (0, ())


def test_a_group_acking_everything_between_the_two_reads_keeps_its_last_delivered_entry() -> None:
    # XINFO GROUPS said "pending: 1", then the worker acked it before XPENDING ran, whose
    # summary then has no oldest entry: the trim failed with "int() ... 'None'" (seen in a
    # benchmark's worker log) instead of keeping from the last delivered entry.
    assert needed_from(b"1700000000000-3", None) == "1700000000000-3"
    assert needed_from(b"1700000000000-3", b"1690000000000-0") == "1690000000000-0"
