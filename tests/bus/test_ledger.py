"""The idempotency ledger: few round trips, and none waited for."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis

from bus import Keys, connect_async
from bus.ledger import Ledger, LedgerRecord, find_record
from bus.ledger_slots import CLOCK_SLACK_S, SLOT_S, slot_of
from bus.settings import BusSettings
from tests.conftest import TEST_PREFIX

NOW = datetime(2026, 1, 1, tzinfo=UTC)
KEYS = Keys(prefix=TEST_PREFIX)


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
    # The records' slot lives their TTL (60 s) past its end: at least a slot more.
    slots = list(redis_client.scan_iter(match=f"{Keys(prefix=TEST_PREFIX).handled_slots}*"))
    assert slots and all(redis_client.ttl(slot) > 60 + SLOT_S - 5 for slot in slots)


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


def _ledger(redis_url: str, *, ttl_s: int = 60) -> tuple[Ledger, Any]:
    client = connect_async(BusSettings(redis_url=redis_url))
    return Ledger(client, keys=KEYS, ttl_s=ttl_s), client


def _server_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def test_a_check_looks_in_the_slots_from_its_bound_less_the_clock_slack(
    redis_url: str, redis_client: redis.Redis
) -> None:
    event_id = f"slots-{uuid.uuid4().hex}"
    occurred = datetime.fromtimestamp(_server_now(redis_client), UTC)

    async def main() -> list[set[str]]:
        ledger, client = _ledger(redis_url)
        try:
            await ledger.record(event_id, "hook:m:a", consumer="w", started_at=NOW, finished_at=NOW)
            return [
                await ledger.done(event_id, ["hook:m:a"], since=occurred),
                await ledger.done(event_id, ["hook:m:a"]),  # no bound: every slot kept
                # An engine host whose clock is ahead, by less than the slack.
                await ledger.done(
                    event_id,
                    ["hook:m:a"],
                    since=occurred + timedelta(seconds=CLOCK_SLACK_S - 1),
                ),
                # A bound after the record's slot: not looked for there.
                await ledger.done(
                    event_id,
                    ["hook:m:a"],
                    since=occurred + timedelta(seconds=CLOCK_SLACK_S + SLOT_S + 1),
                ),
            ]
        finally:
            await client.aclose()

    assert asyncio.run(main()) == [{"hook:m:a"}] * 3 + [set()]


def test_checks_look_back_as_far_as_the_longest_ttl_any_worker_keeps(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # A record of a worker that keeps them 10 hours, written 8 hours ago.
    old_slot = slot_of(_server_now(redis_client) - 8 * 3600)
    redis_client.hset(KEYS.handled_in(old_slot), "e-old:hook:m:a", "{}")
    redis_client.expire(KEYS.handled_in(old_slot), 3 * 3600)

    async def main() -> list[set[str]]:
        short, short_client = _ledger(redis_url, ttl_s=60)
        long, long_client = _ledger(redis_url, ttl_s=10 * 3600)
        try:
            alone = await short.done("e-old", ["hook:m:a"])
            await long.record("e-new", "hook:m:a", consumer="w", started_at=NOW, finished_at=NOW)
            return [alone, await short.done("e-old", ["hook:m:a"])]
        finally:
            await short_client.aclose()
            await long_client.aclose()

    # Past what a 60 s worker keeps; once a 10-hour worker has written, looked for.
    assert asyncio.run(main()) == [set(), {"hook:m:a"}]


def test_only_the_workers_with_the_longest_ttl_keep_it_alive(
    redis_url: str, redis_client: redis.Redis
) -> None:
    # A 10-hour worker wrote lately; its TTL lapses 10 s from now unless it writes again.
    redis_client.set(KEYS.handled_kept_for, 36_000, ex=10)

    async def main() -> None:
        short, client = _ledger(redis_url, ttl_s=60)
        try:
            await short.record("e1", "hook:m:a", consumer="w", started_at=NOW, finished_at=NOW)
        finally:
            await client.aclose()

    asyncio.run(main())
    assert redis_client.get(KEYS.handled_kept_for) == b"36000"
    assert 0 < redis_client.ttl(KEYS.handled_kept_for) <= 10


def test_records_kept_as_keys_before_slots_are_still_honoured(
    redis_url: str, redis_client: redis.Redis
) -> None:
    event_id = f"legacy-{uuid.uuid4().hex}"
    redis_client.set(KEYS.handled(event_id, "hook:m:a"), "{}", ex=60)

    async def main() -> set[str]:
        ledger, client = _ledger(redis_url)
        try:
            return await ledger.done(event_id, ["hook:m:a", "hook:m:b"])
        finally:
            await client.aclose()

    assert asyncio.run(main()) == {"hook:m:a"}


def test_a_write_unlinks_the_slot_about_to_expire_and_never_shortens_one(
    redis_url: str, redis_client: redis.Redis
) -> None:
    now = _server_now(redis_client)
    ending = slot_of(now - 60) - 1  # one of the two whose TTL may run out (ttl_s 60)
    # Less than a slot's time left: every record in it is older than its TTL. Unlinked.
    redis_client.hset(KEYS.handled_in(ending - 1), "e:hook:m:a", "{}")
    redis_client.expire(KEYS.handled_in(ending - 1), SLOT_S - 10)
    # More than a slot's time left (a worker with a longer TTL wrote to it): kept.
    redis_client.hset(KEYS.handled_in(ending), "e:hook:m:a", "{}")
    redis_client.expire(KEYS.handled_in(ending), SLOT_S + SLOT_S // 2)
    # The slot being written, already kept longer by such a worker: not shortened.
    redis_client.hset(KEYS.handled_in(slot_of(now)), "e:hook:m:a", "{}")
    redis_client.expire(KEYS.handled_in(slot_of(now)), 100 * SLOT_S)

    async def main() -> None:
        ledger, client = _ledger(redis_url)
        try:
            await ledger.record("e2", "hook:m:a", consumer="w", started_at=NOW, finished_at=NOW)
        finally:
            await client.aclose()

    asyncio.run(main())
    assert not redis_client.exists(KEYS.handled_in(ending - 1))
    assert redis_client.ttl(KEYS.handled_in(ending)) > SLOT_S
    assert redis_client.ttl(KEYS.handled_in(slot_of(now))) > 99 * SLOT_S
    assert sorted(redis_client.hkeys(KEYS.handled_in(slot_of(now)))) == [
        b"e2:hook:m:a",
        b"e:hook:m:a",
    ]


def test_a_batch_stores_its_record_once_and_each_pair_points_to_it(
    redis_url: str, redis_client: redis.Redis
) -> None:
    run = uuid.uuid4().hex[:8]
    batch = [(f"batch-{run}-{n}", "hook:m:a") for n in range(3)]
    alone = (f"alone-{run}", "hook:m:a")
    later = NOW + timedelta(seconds=1)

    async def main() -> list[bool]:
        ledger, client = _ledger(redis_url)
        try:
            await ledger.record_many(batch, consumer="w1", started_at=NOW, finished_at=later)
            await ledger.record_many([alone], consumer="w2", started_at=NOW, finished_at=NOW)
            return await ledger.done_many([*batch, alone, (f"none-{run}", "hook:m:a")])
        finally:
            await client.aclose()

    assert asyncio.run(main()) == [True, True, True, True, False]
    slot = KEYS.handled_in(slot_of(_server_now(redis_client)))
    fields = [f"{event_id}:{handler}" for event_id, handler in [*batch, alone]]
    values = cast(list[bytes], redis_client.hmget(slot, fields))
    # One shared record, named by a field no (event, handler) field can be; a record of
    # one pair is kept in its own field (a pointer would cost more).
    assert len(set(values[:3])) == 1 and values[0].startswith(b"@")
    assert LedgerRecord.parse(values[3]).consumer == "w2"
    shared = LedgerRecord(consumer="w1", started_at=NOW, finished_at=later)
    assert LedgerRecord.parse(cast(bytes, redis_client.hget(slot, values[0]))) == shared
    assert find_record(redis_client, KEYS, batch[1][0], "hook:m:a", since=NOW) == shared
    alone_record = find_record(redis_client, KEYS, alone[0], "hook:m:a", since=NOW)
    assert alone_record is not None and alone_record.consumer == "w2"
