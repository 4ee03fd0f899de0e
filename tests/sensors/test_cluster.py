"""Redis Cluster: a real three-node cluster on loopback, jobs and two workers against it,
every event handled once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from redis.cluster import RedisCluster

from bus import HOOKS_GROUP, Keys
from bus.runs import FIRST_SEND_FIELD
from engine import EngineSettings
from tests.cluster import redis_cluster
from tests.code_locations.clustered import CHECK_COUNTS, HOOK_COUNTS, SENSOR_COUNTS, clustered
from tests.conftest import TEST_PREFIX
from tests.processes import ROOT, wait_until

SHARDS = 3
KEYS = Keys(prefix=TEST_PREFIX, shards=SHARDS)


@contextmanager
def cluster_worker(url: str, consumer: str, client: RedisCluster) -> Iterator[None]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOOKBUS_REDIS_URL": url,
        "HOOKBUS_REDIS_CLUSTER": "true",
        "HOOKBUS_STREAM_SHARDS": str(SHARDS),
        "HOOKBUS_KEY_PREFIX": TEST_PREFIX,
        "HOOKBUS_CONSUMER_NAME": consumer,
        "HOOKBUS_BLOCK_MS": "200",
        "HOOKBUS_READ_COUNT": "1",
        "HOOKBUS_CHECK_INTERVAL_S": "0.2",
    }
    command = [sys.executable, "-m", "sensors", "worker", "tests.code_locations.clustered"]
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        wait_until(
            lambda: process.poll() is None and client.exists(KEYS.worker_heartbeat(consumer)),
            timeout_s=20,
            what=f"cluster worker {consumer}",
        )
        yield
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_jobs_and_two_workers_on_a_redis_cluster_handle_every_event_once(
    tmp_path: Path,
) -> None:
    with redis_cluster(tmp_path / "cluster") as url, ExitStack() as stack:
        client = RedisCluster.from_url(url)
        stack.callback(client.close)
        stack.enter_context(cluster_worker(url, "c1", client))
        stack.enter_context(cluster_worker(url, "c2", client))
        settings = EngineSettings(
            redis_url=url,
            redis_cluster=True,
            stream_shards=SHARDS,
            key_prefix=TEST_PREFIX,
            spool_dir=tmp_path / "spool",
        )
        run_ids = [
            clustered.execute_in_process(raise_on_error=False, settings=settings).run_id
            for _ in range(12)
        ]

        wait_until(lambda: client.hlen(HOOK_COUNTS) == 12, timeout_s=20, what="every hook")
        wait_until(lambda: client.hlen(SENSOR_COUNTS) == 12, timeout_s=20, what="every sensor")
        # The failure-count check (3 in an hour) fired on the cluster: its history scripts,
        # publish script and event each ran within one slot.
        wait_until(lambda: client.hlen(CHECK_COUNTS) >= 1, timeout_s=20, what="the check")
        wait_until(
            lambda: all(
                client.xpending(stream, HOOKS_GROUP)["pending"] == 0
                for stream in KEYS.all_event_streams()
            ),
            what="every ack",
        )

        assert set(client.hvals(HOOK_COUNTS)) == {b"1"}
        assert set(client.hvals(SENSOR_COUNTS)) == {b"1"}
        assert set(client.hvals(CHECK_COUNTS)) == {b"1"}  # each occurrence's function once
        assert sorted(k.decode() for k in client.hkeys(HOOK_COUNTS)) == sorted(run_ids)  # type: ignore[union-attr]
        assert len({KEYS.shard_of(run_id) for run_id in run_ids}) > 1
        # A cluster client resends a command on its own after a lost reply: no entry may
        # claim to be its event's only copy, so the ledger checks every one.
        entries = [
            (entry_id, fields)
            for stream in KEYS.all_event_streams()
            for entry_id, fields in client.xrange(stream) or []
        ]
        assert len(entries) > 12  # every run's events
        assert [
            entry_id for entry_id, fields in entries if FIRST_SEND_FIELD in (fields or {})
        ] == []
