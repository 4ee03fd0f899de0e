"""A code location for the Redis Cluster test: a failure hook, a sensor and a time-based
check that count."""

from __future__ import annotations

import os
from datetime import timedelta

from redis.cluster import RedisCluster

from engine import job, op
from sensors import (
    CheckContext,
    HookContext,
    RunFailureSensorContext,
    failure_count_check,
    failure_hook,
    run_failure_sensor,
)

#: Hash of run id -> how many times the hook ran for it (``hookbus-test:`` prefix).
HOOK_COUNTS = "hookbus-test:cluster:hook"
#: Hash of run id -> how many times the sensor ran for it.
SENSOR_COUNTS = "hookbus-test:cluster:sensor"
#: Hash of check event id -> how many times the check's function ran for it.
CHECK_COUNTS = "hookbus-test:cluster:check"


def _client() -> RedisCluster:
    # Test code: the harness gives the worker process the cluster's URL.
    return RedisCluster.from_url(os.environ["HOOKBUS_REDIS_URL"])


@failure_hook
def count_in_cluster(context: HookContext) -> None:
    client = _client()
    try:
        client.hincrby(HOOK_COUNTS, context.run_id, 1)
    finally:
        client.close()


@op
def explode() -> None:
    raise ValueError("boom")


@job(hooks={count_in_cluster})
def clustered() -> None:
    explode()


@run_failure_sensor(monitored_jobs=[clustered])
def cluster_failures(context: RunFailureSensorContext) -> None:
    client = _client()
    try:
        client.hincrby(SENSOR_COUNTS, context.run.run_id, 1)
    finally:
        client.close()


@failure_count_check(job=clustered, failures=3, within=timedelta(hours=1))
def clustered_keeps_failing(context: CheckContext) -> None:
    client = _client()
    try:
        client.hincrby(CHECK_COUNTS, context.event_id, 1)
    finally:
        client.close()
