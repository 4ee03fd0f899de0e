"""Stream shards: one run's events stay in one shard, in order; workers read every shard."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import redis

from bus import Keys
from engine import EngineSettings
from sensors import WorkerSettings
from tests.code_locations import basic
from tests.conftest import TEST_PREFIX
from tests.streams import read_events
from tests.workers import burst

SHARDS = 4
KEYS = Keys(prefix=TEST_PREFIX, shards=SHARDS)


@pytest.fixture(autouse=True)
def clear_calls() -> Iterator[None]:
    basic.CALLS.clear()
    yield
    basic.CALLS.clear()


def test_runs_spread_over_shards_keep_their_order_and_every_hook_runs_once(
    engine_settings: EngineSettings, worker_settings: WorkerSettings, redis_client: redis.Redis
) -> None:
    engine = engine_settings.model_copy(update={"stream_shards": SHARDS})
    workers = worker_settings.model_copy(update={"stream_shards": SHARDS})
    burst("tests.code_locations.basic", workers)  # the groups on every shard
    run_ids = [
        basic.etl.execute_in_process(raise_on_error=False, settings=engine).run_id
        for _ in range(12)
    ]

    worker = burst("tests.code_locations.basic", workers)

    shards_used = {KEYS.shard_of(run_id) for run_id in run_ids}
    assert len(shards_used) > 1
    for run_id in run_ids:
        stream = KEYS.stream_for_run(run_id)
        seqs = [e.seq for e in read_events(redis_client, stream) if e.run_id == run_id]
        assert seqs == list(range(1, len(seqs) + 1))
        for other in KEYS.all_event_streams():
            if other != stream:
                assert all(e.run_id != run_id for e in read_events(redis_client, other))
    per_run = Counter(details["run_id"] for name, details in basic.CALLS if name == "notify")
    assert per_run == dict.fromkeys(run_ids, 1)
    sensed = [details["run_id"] for name, details in basic.CALLS if name == "etl_failures"]
    assert sorted(sensed) == sorted(run_ids)
    assert len(worker.subscriptions) == 2 * SHARDS  # hooks and the sensor, per shard
