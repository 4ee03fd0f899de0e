"""A real worker process serves Prometheus metrics; a scrape after a run shows what it did."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bus.redis_server import free_port
from engine import EngineSettings
from tests.code_locations import basic
from tests.conftest import TEST_PREFIX
from tests.processes import wait_until, worker_process


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_counters_and_histograms_after_a_failing_run(
    redis_url: str, engine_settings: EngineSettings
) -> None:
    port = free_port()
    with worker_process(
        "tests.code_locations.basic",
        redis_url=redis_url,
        prefix=TEST_PREFIX,
        env={"HOOKBUS_METRICS_PORT": str(port)},
    ):
        basic.etl.execute_in_process(raise_on_error=False, settings=engine_settings)
        hooks_done = ("hookbus_handler_runs_total", (("kind", "hook"), ("outcome", "succeeded")))
        stream = "{hookbus-test:s0}:events"
        pending = ("hookbus_group_pending", (("group", "hooks"), ("stream", stream)))
        wait_until(
            lambda: scrape(port).get(hooks_done) == 5, timeout_s=15, what="five hooks to succeed"
        )
        # A batch's acks ride on the group's next read (up to ``ACK_LINGER_S`` later), and
        # the gauge asks Redis at each scrape: the entries leave the pending list soon after.
        wait_until(lambda: scrape(port).get(pending) == 0, timeout_s=5, what="the acks")
        metrics = scrape(port)

    assert metrics[("hookbus_events_consumed_total", (("group", "hooks"),))] == 9
    assert (
        metrics[("hookbus_handler_runs_total", (("kind", "sensor"), ("outcome", "succeeded")))] == 1
    )
    assert metrics[("hookbus_event_to_handler_start_seconds_count", (("kind", "hook"),))] == 5
    assert metrics[("hookbus_handler_duration_seconds_count", (("kind", "hook"),))] == 5
    assert metrics[("hookbus_dead_letter_backlog", ())] == 0
    assert metrics[pending] == 0
    assert ("hookbus_group_lag", (("group", "hooks"), ("stream", stream))) in metrics
