"""A consumer calls an entry a first delivery only when no handler can have seen its event."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from bus.consumer import Consumer, Delivery
from bus.keys import read_mark_for
from bus.read_mark import PUBLISH_SCRIPT
from bus.runs import EVENT_FIELD, FIRST_SEND_FIELD
from bus.utils import text

STREAM = "hookbus-test:first-delivery"
GROUP = "hooks"


def add(client: redis.Redis, *, marked: bool) -> str:
    fields: dict[FieldT, EncodableT] = {EVENT_FIELD: b"{}"}
    if marked:
        fields[FIRST_SEND_FIELD] = b"1"
    return text(client.xadd(STREAM, fields))


def firsts(deliveries: list[Delivery]) -> dict[str, bool]:
    return {delivery.entry_id: delivery.first_delivery for delivery in deliveries}


@contextlib.asynccontextmanager
async def consumers(
    redis_url: str, *names: str, read_mark: bool = False
) -> AsyncIterator[list[Consumer]]:
    """One consumer of the group per name, sharing one client."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        readers = [
            Consumer(
                client,
                streams=[STREAM],
                group=GROUP,
                consumer=name,
                start_id="0",
                read_mark=read_mark,
            )
            for name in names
        ]
        await readers[0].ensure_group()
        yield readers
    finally:
        await client.aclose()


def test_a_marked_entry_read_as_new_is_a_first_delivery_and_an_unmarked_one_is_not(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def main() -> dict[str, bool]:
        marked, unmarked = add(redis_client, marked=True), add(redis_client, marked=False)
        async with consumers(redis_url, "w1") as [reader]:
            got = firsts(await reader.read(count=10, block_ms=None))
        return {"marked": got[marked], "unmarked": got[unmarked]}

    assert asyncio.run(main()) == {"marked": True, "unmarked": False}


def test_a_reclaimed_entry_is_never_a_first_delivery(
    redis_url: str, redis_client: redis.Redis
) -> None:
    entry_id = add(redis_client, marked=True)

    async def main() -> tuple[dict[str, bool], dict[str, bool]]:
        async with consumers(redis_url, "dead", "alive") as [dead, alive]:
            read = firsts(await dead.read(count=10, block_ms=None))
            await asyncio.sleep(0.02)  # idle longer than min_idle_ms below
            reclaimed = firsts((await alive.reclaim(min_idle_ms=10, count=10)).deliveries)
        return read, reclaimed

    assert asyncio.run(main()) == ({entry_id: True}, {entry_id: False})


def test_entries_given_again_after_the_group_moved_back_are_not_first_deliveries(
    redis_url: str, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> tuple[dict[str, bool], dict[str, bool]]:
        old = [add(redis_client, marked=True) for _ in range(2)]
        async with consumers(redis_url, "w1") as [reader]:
            before = firsts(await reader.read(count=10, block_ms=None))
            redis_client.xgroup_setid(STREAM, GROUP, "0")  # an operator's rewind
            new = add(redis_client, marked=True)
            after: dict[str, bool] = {}
            for _ in range(3):  # one entry a read: the move is logged once, not per read
                after |= firsts(await reader.read(count=1, block_ms=None))
        assert list(after) == [*old, new]
        return before, after

    before, after = asyncio.run(main())
    assert list(before.values()) == [True, True]
    assert list(after.values()) == [False, False, True]  # only the entry never given before
    moved = [r.getMessage() for r in caplog.records if "group moved back" in r.getMessage()]
    assert len(moved) == 1, moved
    assert f"group moved back group={GROUP} stream={STREAM} given_up_to=" in moved[0]


def test_each_move_back_is_logged(
    redis_url: str, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        for _ in range(2):
            add(redis_client, marked=True)
        async with consumers(redis_url, "w1") as [reader]:
            for _ in range(2):  # read everything, move back, read it all again, twice
                await reader.read(count=10, block_ms=None)
                redis_client.xgroup_setid(STREAM, GROUP, "0")
            await reader.read(count=10, block_ms=None)

    asyncio.run(main())
    assert sum("group moved back" in record.getMessage() for record in caplog.records) == 2


def test_with_a_read_mark_what_another_consumer_was_given_is_not_new_after_a_move_back(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def main() -> tuple[list[str], dict[str, bool]]:
        old = [add(redis_client, marked=True) for _ in range(2)]
        async with consumers(redis_url, "w1", read_mark=True) as [first]:
            await first.read(count=10, block_ms=None)  # given both
            await first.read(count=10, block_ms=None)  # publishes what it was given
        redis_client.xgroup_setid(STREAM, GROUP, "0")  # moved back while no one reads
        new = add(redis_client, marked=True)
        async with consumers(redis_url, "w2", read_mark=True) as [second]:  # a new worker
            return [*old, new], firsts(await second.read(count=10, block_ms=None))

    ids, after = asyncio.run(main())
    assert after == {ids[0]: False, ids[1]: False, ids[2]: True}


def test_the_read_mark_only_goes_up_and_replaces_what_is_no_entry_id(
    redis_client: redis.Redis,
) -> None:
    key = read_mark_for(STREAM, GROUP)

    def publish(entry_id: str) -> bytes | None:
        redis_client.eval(PUBLISH_SCRIPT, 1, key, entry_id)
        return redis_client.get(key)  # type: ignore[return-value]

    assert publish("") is None  # nothing given yet: nothing published
    assert publish("9-5") == b"9-5"
    assert publish("10-0") == b"10-0"  # a number, not a string: "10-0" < "9-5" as text
    assert publish("9-9") == b"10-0"  # another consumer's older newest: the mark stays
    assert publish("10-0") == b"10-0"
    assert publish("10-12") == b"10-12"  # same ms, later sequence
    redis_client.set(key, "garbage")  # set by hand
    assert publish("3-0") == b"3-0"


def test_a_mark_that_is_no_entry_id_is_ignored_with_a_warning(
    redis_url: str, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> tuple[str, dict[str, bool]]:
        async with consumers(redis_url, "w1", read_mark=True) as [reader]:
            entry_id = add(redis_client, marked=True)
            return entry_id, firsts(await reader.read(count=10, block_ms=None))

    redis_client.set(read_mark_for(STREAM, GROUP), "garbage")
    entry_id, got = asyncio.run(main())
    assert got == {entry_id: True}  # read, and a first delivery as before
    [warning] = [r.getMessage() for r in caplog.records if "read mark" in r.getMessage()]
    assert f"key={read_mark_for(STREAM, GROUP)} holds b'garbage', not an entry id" in warning


def test_publish_marks_publishes_what_the_consumer_was_given(
    redis_url: str, redis_client: redis.Redis
) -> None:
    for _ in range(2):
        add(redis_client, marked=True)

    async def main() -> str:
        async with consumers(redis_url, "w1", read_mark=True) as [reader]:
            await reader.read(count=10, block_ms=None)  # publishes nothing yet: given none
            assert redis_client.get(read_mark_for(STREAM, GROUP)) is None
            await reader.publish_marks()  # as a stopping worker does
        return text(redis_client.get(read_mark_for(STREAM, GROUP)))

    newest = text(redis_client.xrevrange(STREAM, count=1)[0][0])  # type: ignore[index]
    assert asyncio.run(main()) == newest
