"""A copy of an event read while its original's handlers still run waits for it.

The ledger records a handler only once it has ended, so a resend (or a replay) read in a
later batch while the original's hook still runs would find no record and run the hook
again. Within a worker the copy waits for the original entry instead: then it asks the
ledger (only what the original did not record runs), or it is handed back with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import redis

from bus import Keys, connect_async
from bus.consumer import Consumer, Delivery
from bus.deadletter import DeadLetters
from bus.events import BusEvent, OpEvent, OpInfo, RunInfo, encode_event
from bus.runs import EVENT_FIELD
from bus.settings import BusSettings
from bus.states import OpState
from sensors.handlers import Handler, MissingHook
from sensors.held_events import HeldEvents
from sensors.hook_threads import HookThreads
from sensors.intake import Intake
from sensors.subscription import Subscription
from tests.conftest import TEST_PREFIX
from tests.sensors.dispatchers import make_dispatcher
from tests.streams import read_stream

KEYS = Keys(prefix=TEST_PREFIX)
STREAM = f"{TEST_PREFIX}:copies"
GROUP = "hooks"

FAILED = OpEvent(
    seq=3,
    run=RunInfo(run_id="r1", run_name="r1", job_name="etl"),
    op=OpInfo(name="load", step_key="load"),
    from_state=OpState.RUNNING,
    to_state=OpState.FAILED,
)


@dataclass
class Hooks:
    """``hook:page`` runs until ``release`` is set (a slow Slack call, say); with
    ``failing``, ``hook:chat`` fails every attempt (dead-lettered after three) until
    ``fixed`` is set."""

    failing: bool = False
    release: asyncio.Event = field(default_factory=asyncio.Event)
    fixed: asyncio.Event = field(default_factory=asyncio.Event)
    started: list[str] = field(default_factory=list)
    chat_attempts: int = 0

    def select(self, event: BusEvent) -> tuple[list[Handler], list[MissingHook]]:
        async def page() -> None:
            self.started.append(event.event_id)
            await self.release.wait()

        async def chat() -> None:
            self.chat_attempts += 1
            if not self.fixed.is_set():
                raise RuntimeError("slack is down")

        handlers = [Handler(name="hook:page", fn=page, build_args=lambda _: ())]
        if self.failing:
            handlers.append(Handler(name="hook:chat", fn=chat, build_args=lambda _: ()))
        return handlers, []


@dataclass
class Bench:
    intake: Intake
    subscription: Subscription
    hook: Hooks
    add_and_read: Callable[[int], Awaitable[list[Delivery]]]


@asynccontextmanager
async def bench(redis_url: str, hook: Hooks | None = None) -> AsyncIterator[Bench]:
    client = connect_async(BusSettings(redis_url=redis_url))
    threads = HookThreads(4, spare=1)
    hook = hook or Hooks()
    consumer = Consumer(client, streams=[STREAM], group=GROUP, consumer="w")
    await consumer.ensure_group()
    subscription = Subscription(consumer, hook.select)
    intake = Intake(
        make_dispatcher(client, threads, concurrency=4),
        DeadLetters(client, keys=KEYS),
        max_in_flight=16,
    )

    async def add_and_read(copies: int = 1) -> list[Delivery]:
        """The event added ``copies`` more times (as a resend adds it), and read."""
        for _ in range(copies):
            await client.xadd(STREAM, {EVENT_FIELD: encode_event(FAILED)})
        return await consumer.read(count=10, block_ms=None)

    try:
        yield Bench(intake, subscription, hook, add_and_read)
    finally:
        hook.release.set()
        await asyncio.gather(*intake.tasks, return_exceptions=True)
        threads.close()
        await client.aclose()


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.005)


def pending(client: redis.Redis) -> int:
    return int(client.xpending(STREAM, GROUP)["pending"])


def test_a_copy_read_while_its_original_runs_waits_and_is_acked_after_it(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def main() -> None:
        async with bench(redis_url) as b:
            await b.intake.hand_out(b.subscription, await b.add_and_read(1))
            await until(lambda: len(b.hook.started) == 1)
            # The resend lands while the hook still runs: nothing is recorded yet.
            await b.intake.hand_out(b.subscription, await b.add_and_read(1))
            await asyncio.sleep(0.2)  # past the batch's patience: both in tasks of their own
            assert len(b.hook.started) == 1
            assert pending(redis_client) == 2  # the copy waits; it is not acked before
            b.hook.release.set()
            await until(lambda: not b.intake.tasks)
            assert len(b.subscription.held_events) == 0
            assert b.intake.free_slots == 16  # every slot given back
            assert await b.subscription.flush_acks()

    asyncio.run(main())

    assert pending(redis_client) == 0


def test_a_replayed_dead_letter_read_while_its_original_runs_runs_again(
    redis_url: str, redis_client: redis.Redis
) -> None:
    dead = KEYS.dead_letter_for(STREAM)
    hooks = Hooks(failing=True)

    async def main() -> None:
        async with bench(redis_url, hooks) as b:
            await b.intake.hand_out(b.subscription, await b.add_and_read(1))
            # hook:chat is dead-lettered while hook:page still runs: the entry stays held.
            await until(lambda: bool(redis_client.xlen(dead)))
            # Slack is fixed and the letter replayed (a copy of the event, as
            # ``hookbus dlq replay`` adds it) before the original entry is settled.
            b.hook.fixed.set()
            [(letter_id, fields)] = read_stream(redis_client, dead)
            redis_client.xadd(STREAM, {EVENT_FIELD: fields[b"payload"]})
            redis_client.xdel(dead, letter_id)
            replay = await b.subscription.consumer.read(count=10, block_ms=None)
            await b.intake.hand_out(b.subscription, replay)
            await asyncio.sleep(0.2)
            assert b.hook.chat_attempts == 3  # the replay waits for the original
            b.hook.release.set()
            await until(lambda: not b.intake.tasks)
            assert await b.subscription.flush_acks()

    asyncio.run(main())

    assert hooks.chat_attempts == 4  # ran again, and succeeded
    assert len(hooks.started) == 1  # hook:page's record skipped it
    assert redis_client.xlen(dead) == 0
    assert pending(redis_client) == 0


def test_copies_in_one_batch_wait_for_the_first(redis_url: str, redis_client: redis.Redis) -> None:
    async def main() -> None:
        async with bench(redis_url) as b:
            batch = await b.add_and_read(2)  # a resend lands next to its original
            await b.intake.hand_out(b.subscription, batch)
            await until(lambda: len(b.hook.started) == 1)
            await asyncio.sleep(0.1)
            b.hook.release.set()
            await until(lambda: not b.intake.tasks)
            assert len(b.hook.started) == 1
            assert await b.subscription.flush_acks()

    asyncio.run(main())

    assert pending(redis_client) == 0


def test_a_copy_is_handed_back_with_its_original(redis_url: str, redis_client: redis.Redis) -> None:
    async def main() -> None:
        async with bench(redis_url) as b:
            await b.intake.hand_out(b.subscription, await b.add_and_read(1))
            await until(lambda: len(b.hook.started) == 1)
            await b.intake.hand_out(b.subscription, await b.add_and_read(1))
            # The original's hook outlives the batch: a follow-up task waits for it. Cut
            # it short, as the end of the shutdown grace period does.
            await until(lambda: bool(follow_ups(b.intake)))
            # Once it runs: a task cancelled before its first step never runs its finally
            # (at shutdown that leaves the entry pending, which is all a stop needs).
            await asyncio.sleep(0.05)
            for task in follow_ups(b.intake):
                task.cancel()
            await until(lambda: not b.intake.tasks)
            assert len(b.hook.started) == 1
            assert b.subscription.held_count == 0  # both handed back: nothing refreshed
            assert not b.subscription.has_finished()
            assert len(b.subscription.held_events) == 0
            assert b.intake.free_slots == 16  # every slot given back

    asyncio.run(main())

    assert pending(redis_client) == 2  # both left for a reclaim, which asks the ledger


def follow_ups(intake: Intake) -> list[asyncio.Task[None]]:
    return [
        task
        for task in intake.tasks
        if task.get_coro().__qualname__ == "Intake._follow_up"  # type: ignore[union-attr]
    ]


def test_held_events_free_an_event_when_its_entry_settles() -> None:
    async def main() -> list[object]:
        held = HeldEvents()
        first, copy, later = (Delivery("s", f"{n}-0", None) for n in (1, 2, 3))
        seen: list[object] = [held.claim("e", first), held.claim("e", first)]
        waited = held.claim("e", copy)
        assert waited is not None
        seen.append(waited.done())
        held.settle([copy], finished=True)  # a copy holds nothing: ignored
        seen.append(waited.done())
        held.settle([first], finished=False)
        seen += [waited.result(), len(held), held.claim("e", later)]
        return seen

    assert asyncio.run(main()) == [None, None, False, False, False, 0, None]
