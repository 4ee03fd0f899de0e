"""Notification rules in a real (in-process) worker against a Slack stand-in and Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from bus import RunState, connect_async
from notifiers import (
    JsonLinesFile,
    JsonLinesNotifier,
    NotificationRule,
    Silence,
    SilenceStore,
    SlackChannel,
    Webhook,
    generate_webhook_secret,
    new_silence,
    verify,
)
from notifiers.testing import FakeSlackServer, WebhookReceiver
from sensors import CodeLocation, WorkerSettings
from tests.conftest import TEST_PREFIX
from tests.notifiers.alerting_helpers import KEYS, burst, location, publish, suppressed
from tests.notifiers.events import op_failed, run_ended
from tests.processes import worker_process
from tests.streams import read_stream


@pytest.fixture
def slack() -> Iterator[FakeSlackServer]:
    with FakeSlackServer() as server:
        yield server


@pytest.fixture
def settings(worker_settings: WorkerSettings, slack: FakeSlackServer) -> WorkerSettings:
    return worker_settings.model_copy(
        update={"slack_base_url": slack.base_url, "retry_base_s": 0.01, "retry_max_s": 0.02}
    )


def rule(**options: object) -> NotificationRule:
    defaults: dict[str, object] = {
        "name": "oncall",
        "destinations": [SlackChannel("#alerts")],
        "group_window_s": 0.3,
    }
    return NotificationRule(**{**defaults, **options})  # type: ignore[arg-type]


def top_level(slack: FakeSlackServer) -> list[dict[str, object]]:
    return [m for m in slack.messages() if "thread_ts" not in m]


def text_of(message: dict[str, object]) -> str:
    return json.dumps(message, ensure_ascii=False)


def test_fifty_op_failures_of_one_run_make_one_channel_message(
    redis_client: redis.Redis, settings: WorkerSettings, slack: FakeSlackServer
) -> None:
    loc = CodeLocation.load("tests.code_locations.alerting")
    burst(loc, settings)  # create the groups
    failures = [op_failed(f"op_{n:02d}", seq=n + 1, message=f"row {n} bad") for n in range(50)]
    publish(redis_client, [*failures, run_ended(RunState.FAILED)])

    burst(loc, settings)

    # One message in the channel (the first failure, in full); in its thread one grouped
    # reply listing the other 49, then the run's final state; the first message updated.
    # (On a badly overloaded machine a failure handled after the 1.5 s window closed gets
    # its own reply in the thread; never a second message in the channel.)
    [parent] = top_level(slack)
    grouped_reply, *late, final = [m for m in slack.messages() if "thread_ts" in m]
    assert len(late) <= 2
    assert "`op_00`" in text_of(parent) and "ValueError" in text_of(parent)
    assert "failures*" in text_of(grouped_reply)
    replies = " ".join(text_of(m) for m in slack.messages() if "thread_ts" in m)
    assert all(f"`op_{n:02d}`" in replies for n in range(1, 50))
    assert "Run failed" in text_of(final)
    update = slack.messages("chat.update")[-1]
    assert "Run *failed*; 50 failure(s)" in text_of(update)
    grouped = [entry for entry in suppressed(redis_client) if entry["reason"] == "grouped"]
    assert len(grouped) >= 47 and parent["channel"] == "#data-alerts"


def test_follow_ups_go_in_the_runs_thread_and_the_first_message_shows_the_end(
    redis_client: redis.Redis, settings: WorkerSettings, slack: FakeSlackServer
) -> None:
    loc = location(rule(group_window_s=0))
    burst(loc, settings)
    for event in (op_failed("extract", seq=1), op_failed("load", seq=2)):
        publish(redis_client, [event])
        burst(loc, settings)
    publish(redis_client, [run_ended(RunState.COMPLETED)])
    burst(loc, settings)

    first, second, final = slack.messages()
    assert "thread_ts" not in first and "`extract`" in text_of(first)
    parent_ts = slack.wait_for_requests(1)[0]
    assert second["thread_ts"] == final["thread_ts"] and "`load`" in text_of(second)
    assert "Run completed (recovered)" in text_of(final)
    [update] = slack.messages("chat.update")
    assert update["ts"] == second["thread_ts"] and parent_ts
    assert "Run *completed (recovered)*; 2 failure(s)" in text_of(update)


def test_a_run_that_never_alerted_sends_no_follow_up(
    redis_client: redis.Redis, settings: WorkerSettings, slack: FakeSlackServer
) -> None:
    loc = location(rule())
    burst(loc, settings)
    publish(redis_client, [run_ended(RunState.COMPLETED)])
    burst(loc, settings)
    assert slack.requests == []


def test_the_same_failure_is_sent_once_per_dedupe_window(
    redis_client: redis.Redis, settings: WorkerSettings, slack: FakeSlackServer
) -> None:
    loc = location(rule(run_states=[], group_window_s=0))
    burst(loc, settings)
    publish(redis_client, [op_failed(run_id="r1", message="row 41 is null")])
    burst(loc, settings)
    publish(
        redis_client,
        [
            op_failed(run_id="r2", message="row 42 is null"),  # same shape: a duplicate
            op_failed(run_id="r3", message="disk full"),  # another error: alerted
        ],
    )
    burst(loc, settings)

    assert sorted(m["text"].split("\n")[1] for m in slack.messages()) == [
        "ValueError: disk full",
        "ValueError: row 41 is null",
    ]
    [duplicate] = suppressed(redis_client)
    assert (duplicate["reason"], duplicate["run_id"]) == ("duplicate", "r2")


def test_a_silence_suppresses_a_matching_alert_and_not_another(
    redis_client: redis.Redis, redis_url: str, settings: WorkerSettings, slack: FakeSlackServer
) -> None:
    async def silences(action: str) -> list[tuple[Silence, int]]:
        client = connect_async(settings)
        store = SilenceStore(client, keys=KEYS)
        if action == "add":
            await store.add(new_silence(duration=timedelta(hours=2), job="nightly_etl"))
        listed = await store.list()
        await client.aclose()
        return listed

    asyncio.run(silences("add"))
    loc = location(rule(group_window_s=0))
    burst(loc, settings)
    publish(
        redis_client,
        [op_failed(job="nightly_etl", run_id="a"), op_failed(job="billing", run_id="b")],
    )
    burst(loc, settings)

    [message] = slack.messages()
    assert "billing" in message["text"] and "nightly_etl" not in message["text"]
    [held] = suppressed(redis_client)
    assert held["reason"] == "silenced" and held["job"] == "nightly_etl"
    [(silence, hits)] = asyncio.run(silences("list"))
    assert hits == 1 and held["detail"] == f"silence={silence.id}"


def test_a_destination_rate_limit_holds_back_the_excess(
    redis_client: redis.Redis, settings: WorkerSettings, slack: FakeSlackServer
) -> None:
    limited = rule(
        destinations=[SlackChannel("#alerts", max_per_minute=2)],
        dedupe_window_s=0,
        group_window_s=0,
    )
    loc = location(limited)
    burst(loc, settings)
    publish(redis_client, [op_failed(run_id=f"r{n}", message=f"e{n}") for n in range(4)])
    burst(loc, settings)

    assert len(slack.messages()) == 2
    assert [entry["reason"] for entry in suppressed(redis_client)] == ["rate_limited"] * 2


def test_a_permanent_slack_error_is_dead_lettered_without_retries(
    redis_client: redis.Redis, settings: WorkerSettings, slack: FakeSlackServer
) -> None:
    loc = location(rule(group_window_s=0))
    burst(loc, settings)
    slack.fail_next(FakeSlackServer.api_error("invalid_auth"))
    publish(redis_client, [op_failed()])
    worker = burst(loc, settings.model_copy(update={"handler_max_attempts": 5}))

    assert len(slack.requests) == 1
    [(_, letter)] = read_stream(redis_client, KEYS.dead_letter_stream(0))
    assert letter[b"handler"] == b"rule:oncall:slack:#alerts"
    assert letter[b"attempts"] == b"1"
    assert b"refused the message for good: got 'invalid_auth'" in letter[b"error"]
    assert worker.dispatcher.retried == 0


def test_webhook_and_file_destinations_get_the_same_alert(
    redis_client: redis.Redis, settings: WorkerSettings, tmp_path: Path
) -> None:
    secret = generate_webhook_secret()
    alerts = tmp_path / "alerts.jsonl"
    with WebhookReceiver() as receiver:
        both = rule(
            destinations=[
                Webhook(url=receiver.url, secret=SecretStr(secret), label="pager"),
                JsonLinesFile(alerts),
            ],
            group_window_s=0,
        )
        loc = location(both)
        burst(loc, settings)
        event = op_failed()
        publish(redis_client, [event])
        burst(loc, settings)
        [post] = receiver.received

    body = verify(post.body, post.headers, secret=secret)
    assert body.data.rule == "oncall" and body.data.events[0].event_id == event.event_id
    assert post.headers["webhook-id"] == event.event_id
    [line] = JsonLinesNotifier.read(alerts)
    assert line["destination"] == "file:alerts.jsonl" and "`load`" in json.dumps(line["blocks"])


def test_a_slack_outage_past_its_retries_is_retried_by_the_worker_after_retry_after(
    redis_client: redis.Redis, settings: WorkerSettings, slack: FakeSlackServer
) -> None:
    loc = location(rule(group_window_s=0))
    patient = settings.model_copy(
        update={"slack_max_retries": 0, "retry_base_s": 0.01, "retry_max_s": 5.0}
    )
    burst(loc, patient)
    slack.fail_next(FakeSlackServer.rate_limited(retry_after_s=1))
    publish(redis_client, [op_failed()])
    worker = burst(loc, patient)

    first, second = slack.requests
    assert second.received_at - first.received_at >= 0.9  # the worker honoured Retry-After
    assert first.body == second.body and worker.dispatcher.retried == 1
    assert read_stream(redis_client, KEYS.dead_letter_stream(0)) == []


def test_a_worker_process_sends_rule_alerts_with_its_settings(
    redis_client: redis.Redis, redis_url: str, slack: FakeSlackServer
) -> None:
    env = {
        "SLACK_BOT_TOKEN": "xoxb-process",
        "HOOKBUS_SLACK_BASE_URL": slack.base_url,
        "HOOKBUS_WEBSERVER_BASE_URL": "https://hookbus.example.com",
    }
    with worker_process(
        "tests.code_locations.alerting", redis_url=redis_url, prefix=TEST_PREFIX, env=env
    ):
        publish(redis_client, [op_failed(run_id="proc-run")])
        [request] = slack.wait_for_requests(1, timeout_s=15)

    assert request.headers["Authorization"] == "Bearer xoxb-process"
    assert "https://hookbus.example.com/runs/proc-run" in json.dumps(request.body)


def test_bursts_can_be_grouped_per_job_across_runs(
    redis_client: redis.Redis, settings: WorkerSettings, slack: FakeSlackServer
) -> None:
    loc = location(rule(group_by="job", run_states=[], group_window_s=1.0))
    burst(loc, settings)
    errors = ["disk full", "timeout", "bad row"]
    publish(redis_client, [op_failed(run_id=f"run-{n}", message=m) for n, m in enumerate(errors)])
    burst(loc, settings)

    [first] = top_level(slack)
    [grouped] = [m for m in slack.messages() if "thread_ts" in m]
    assert "*3 failures* in job `nightly_etl`, 2 runs" in text_of(grouped)


def test_a_run_whose_one_op_failed_ends_with_its_final_state_in_the_thread(
    redis_client: redis.Redis, settings: WorkerSettings, slack: FakeSlackServer
) -> None:
    loc = location(rule())
    burst(loc, settings)
    publish(redis_client, [op_failed("load", seq=1), run_ended(RunState.FAILED)])

    burst(loc, settings)

    # The op failure is the first message; the run's failure is its final state, not a
    # second failure grouped with the first.
    [parent] = top_level(slack)
    [final] = [m for m in slack.messages() if "thread_ts" in m]
    assert "`load`" in text_of(parent)
    assert "Run failed" in text_of(final) and "1 failure(s)" in text_of(final)
    assert "2 failures" not in " ".join(text_of(m) for m in slack.messages())
    update = slack.messages("chat.update")[-1]
    assert "Run *failed*; 1 failure(s); see the thread" in text_of(update)
    assert [e for e in suppressed(redis_client) if e["reason"] == "grouped"] == []


def test_a_run_that_failed_with_no_op_alert_is_one_message(
    redis_client: redis.Redis, settings: WorkerSettings, slack: FakeSlackServer
) -> None:
    loc = location(rule())
    burst(loc, settings)
    publish(redis_client, [run_ended(RunState.FAILED)])

    burst(loc, settings)

    [message] = slack.messages()
    assert "thread_ts" not in message and "Run failed" in text_of(message)
