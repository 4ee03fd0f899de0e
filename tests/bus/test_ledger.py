"""The idempotency ledger: few round trips, and none waited for."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import redis

from bus import Keys, connect_async
from bus.ledger import Ledger
from bus.settings import BusSettings
from tests.conftest import TEST_PREFIX

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_concurrent_records_share_a_round_trip_and_checks_the_next_after_a_lone_first(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def main() -> tuple[list[set[str]], set[str], int, int]:
        client = connect_async(BusSettings(redis_url=redis_url))
        ledger = Ledger(client, keys=Keys(prefix=TEST_PREFIX), ttl_s=60)
        try:
            await asyncio.gather(
                *(
                    ledger.record(
                        f"e{n}", "hook:m:a", consumer="w", started_at=NOW, finished_at=NOW
                    )
                    for n in range(50)
                )
            )
            after_records = ledger.round_trips
            found = await asyncio.gather(
                *(ledger.done(f"e{n}", ["hook:m:a", "hook:m:b"]) for n in range(100))
            )
            return found, await ledger.done("e7", []), after_records, ledger.round_trips
        finally:
            await client.aclose()

    found, nothing, after_records, total = asyncio.run(main())
    assert found == [{"hook:m:a"}] * 50 + [set()] * 50
    assert nothing == set()
    # The records share one round trip; of the checks, the first goes at once, alone, and
    # the other 99 share the next.
    assert (after_records, total) == (1, 3)
    assert redis_client.ttl(Keys(prefix=TEST_PREFIX).handled("e3", "hook:m:a")) > 50


def test_cancelling_a_lone_check_fails_no_other_request(redis_url: str) -> None:
    async def main() -> list[set[str]]:
        client = connect_async(BusSettings(redis_url=redis_url))
        ledger = Ledger(client, keys=Keys(prefix=TEST_PREFIX), ttl_s=60)
        try:
            await ledger.done("warm-up", ["hook:m:a"])
            lone = asyncio.ensure_future(ledger.done("e0", ["hook:m:a"]))
            await asyncio.sleep(0)  # its round trip is in flight, from its own task
            others = asyncio.gather(*(ledger.done(f"e{n}", ["hook:m:a"]) for n in range(1, 4)))
            await asyncio.sleep(0)  # they are queued behind it
            lone.cancel()
            return list(await others)
        finally:
            await client.aclose()

    assert asyncio.run(main()) == [set()] * 3


def test_every_caller_of_a_failed_round_trip_gets_the_error() -> None:
    async def main() -> tuple[object, ...]:
        # Nothing listens on port 1: the shared round trip fails for every caller.
        client = connect_async(BusSettings(redis_url="redis://127.0.0.1:1/0", redis_timeout_s=1))
        ledger = Ledger(client, keys=Keys(prefix=TEST_PREFIX), ttl_s=60)
        try:
            return tuple(
                await asyncio.gather(
                    ledger.done("e1", ["hook:m:a"]),
                    ledger.record("e2", "hook:m:a", consumer="w", started_at=NOW, finished_at=NOW),
                    return_exceptions=True,
                )
            )
        finally:
            await client.aclose()

    results = asyncio.run(main())
    assert [type(result) for result in results] == [redis.ConnectionError] * 2


def test_a_lone_check_goes_at_once_and_those_made_meanwhile_share_the_next_round_trip(
    redis_url: str,
) -> None:
    async def main() -> tuple[int, list[set[str]]]:
        client = connect_async(BusSettings(redis_url=redis_url))
        ledger = Ledger(client, keys=Keys(prefix=TEST_PREFIX), ttl_s=60)
        try:
            await ledger.done("warm-up", ["hook:m:a"])  # connect before counting
            before = ledger.round_trips
            first = asyncio.ensure_future(ledger.done("e0", ["hook:m:a"]))
            await asyncio.sleep(0)  # the lone check's round trip is in flight
            rest = await asyncio.gather(*(ledger.done(f"e{n}", ["hook:m:a"]) for n in range(20)))
            await first
            return ledger.round_trips - before, list(rest)
        finally:
            await client.aclose()

    round_trips, found = asyncio.run(main())
    assert found == [set()] * 20
    assert round_trips == 2


def test_one_check_of_thousands_of_keys_answers_each_key(redis_url: str) -> None:
    none_yet, found = _check_thousands(redis_url)
    assert not any(none_yet)
    assert [n for n, done in enumerate(found) if done] == [0, 4500, 8999]


def _check_thousands(redis_url: str) -> tuple[list[bool], list[bool]]:
    # 9,000 checks in one script: past the 4,000 keys one EXISTS takes at a time, and with
    # a few keys recorded (anywhere in the list) every key must still get its own answer.
    async def main() -> tuple[list[bool], list[bool]]:
        client = connect_async(BusSettings(redis_url=redis_url))
        ledger = Ledger(client, keys=Keys(prefix=TEST_PREFIX), ttl_s=60)
        run = uuid.uuid4().hex[:8]  # keys of earlier runs live on for their TTL
        pairs = [(f"big-{run}-{n}", "hook:m:a") for n in range(9000)]
        try:
            none_yet = await ledger.done_many(pairs)
            await ledger.record_many(
                [pairs[0], pairs[4500], pairs[8999]], consumer="w", started_at=NOW, finished_at=NOW
            )
            return none_yet, await ledger.done_many(pairs)
        finally:
            await client.aclose()

    return asyncio.run(main())
