"""Notification rules on time-based check events: which rules alert, and how it reads."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import cast

import pytest
import redis
import redis.asyncio as aioredis

from bus import CheckEvent, CheckKind, RunState
from bus.checks import FIRE_SCRIPT, fire_args
from notifiers import (
    NotificationRule,
    NotifierConfigError,
    SilenceStore,
    SlackChannel,
    WebhookBody,
    new_silence,
)
from notifiers.check_format import check_message, window
from notifiers.testing import FakeSlackServer
from sensors import CodeLocation, WorkerSettings
from tests.code_locations import checked
from tests.notifiers.alerting_helpers import KEYS, burst, location, publish, suppressed
from tests.notifiers.events import STARTED, run_ended, run_info


def stuck(run_id: str = "run-1", job: str = "nightly_etl", **tags: str) -> CheckEvent:
    return CheckEvent(
        occurred_at=STARTED + timedelta(hours=2, minutes=5, seconds=12),
        check_name="nightly_stuck",
        kind=CheckKind.RUN_STUCK,
        job_name=job,
        message=f"run {run_id} of job {job} has been running for 125 min (limit 30 min)",
        within_s=1800,
        run=run_info(run_id, job, **tags),
        run_state=RunState.RUNNING,
        state_since=STARTED,
    )


def failing(job: str = "nightly_etl") -> CheckEvent:
    return CheckEvent(
        occurred_at=STARTED,
        check_name="keeps_failing",
        kind=CheckKind.FAILURE_COUNT,
        job_name=job,
        message=f"job {job} failed 4 times",
        within_s=3600,
        count=4,
        failures=3,
    )


def stale(job: str = "nightly_etl") -> CheckEvent:
    return CheckEvent(
        occurred_at=STARTED,
        check_name="fresh",
        kind=CheckKind.NOT_FRESH,
        job_name=job,
        message=f"job {job} has not completed",
        within_s=25 * 3600,
    )


def fire(client: redis.Redis, event: CheckEvent) -> None:
    keys, args = fire_args(KEYS, event, ttl_s=60)
    assert client.eval(FIRE_SCRIPT, len(keys), *keys, *args) == 1


def text_of(message: object) -> str:
    return json.dumps(message, ensure_ascii=False)


# What a message says.


def test_a_stuck_run_alert_says_which_run_how_long_and_the_limit() -> None:
    message = check_message(stuck(team="data"), webserver_base_url="https://hb.example.com")
    blocks = text_of(message.blocks)

    assert ":hourglass_flowing_sand: *Run still running after 2 h 5 min* · job `nightly_etl`" in (
        blocks
    )
    assert (
        "Run `nightly_etl-run-1` (`run-1`) has been *running* for *2 h 5 min*; "
        "the limit is *30 min*."
    ) in blocks
    assert "*Check*\\n`nightly_stuck`" in blocks and "*Limit*\\n30 min" in blocks
    assert "*In this state since*\\n2026-01-01 03:00 UTC" in blocks
    assert "`team=data`" in blocks
    assert "https://hb.example.com/runs/run-1" in blocks
    assert message.text == (
        "Check 'nightly_stuck' fired for job 'nightly_etl': Run nightly_etl-run-1 (run-1) has "
        "been running for 2 h 5 min; the limit is 30 min."
    )


def test_failure_count_and_freshness_alerts_say_how_many_and_the_window() -> None:
    count = check_message(failing())
    assert "*4 failed runs in 1 h*" in text_of(count.blocks)
    assert "*4 failures* in the last *1 h* (the check fires at 3)." in text_of(count.blocks)
    assert "View run" not in text_of(count.blocks)
    fresh = check_message(stale())
    assert "*No successful run in 25 h*" in text_of(fresh.blocks)


def test_a_failure_count_alert_names_the_failed_runs_and_the_last_error() -> None:
    event = failing().model_copy(
        update={"failed_run_ids": ("r-9", "r-8", "r-7"), "last_error": "disk <full>"}
    )
    message = check_message(event)
    blocks = text_of(message.blocks)

    assert "Failed runs: `r-9`, `r-8`, `r-7`" in blocks
    assert "Last error:\\n```disk &lt;full&gt;```" in blocks
    assert message.text.endswith("(the check fires at 3); runs r-9, r-8, r-7.")


def test_a_failure_count_alert_gives_each_failed_runs_name_with_its_id() -> None:
    event = failing().model_copy(
        update={
            "failed_run_ids": ("r-9", "r-8"),
            "failed_run_names": ("nightly-9", "nightly-8"),
        }
    )
    message = check_message(event)

    assert "Failed runs: `nightly-9` (`r-9`), `nightly-8` (`r-8`)" in text_of(message.blocks)
    assert message.text.endswith("runs nightly-9 (r-9), nightly-8 (r-8).")


def test_a_freshness_alert_says_when_the_job_last_succeeded_or_since_when_none_was_seen() -> None:
    seen = stale().model_copy(
        update={"last_success_at": STARTED, "last_success_run_name": "nightly-41"}
    )
    blocks = text_of(check_message(seen).blocks)
    assert "Last success: *2026-01-01 03:00 UTC* (run `nightly-41`); the window is *25 h*." in (
        blocks
    )
    assert check_message(seen).text.endswith(
        "in the last 25 h; last success 2026-01-01 03:00 UTC (run nightly-41)."
    )

    never = stale().model_copy(update={"watching_since": STARTED - timedelta(days=2)})
    assert "No success seen since the check began watching at *2025-12-30 03:00 UTC*" in (
        text_of(check_message(never).blocks)
    )
    assert check_message(never).text.endswith("never seen since 2025-12-30 03:00 UTC.")


def test_user_text_in_a_check_alert_is_inert() -> None:
    message = check_message(stale(job="<!channel> etl"))
    assert "<!channel>" not in text_of(message.blocks) + message.text
    assert "&lt;!channel&gt;" in message.text


def test_windows_read_as_people_say_them() -> None:
    assert [window(s) for s in (0, 45, 1800, 3600, 5400, 90_000)] == [
        "0 s",
        "45 s",
        "30 min",
        "1 h",
        "1 h 30 min",
        "25 h",
    ]


def test_a_webhook_names_the_kind_of_check() -> None:
    event = stuck()
    body = WebhookBody.for_events((event,), text="t", rule="oncall")
    assert body.type == "hookbus.check.run_stuck"
    assert body.message_id() == event.event_id
    assert WebhookBody.model_validate_json(body.model_dump_json()) == body


# Which rules alert on which check events.


def test_a_rule_alerts_on_every_kind_of_check_of_its_jobs_by_default() -> None:
    rule = NotificationRule(name="r", jobs=["nightly_etl"], destinations=[SlackChannel("#a")])
    assert all(rule.matches(event) for event in (stuck(), failing(), stale()))
    assert not rule.matches(stale(job="other"))


def test_a_rule_can_narrow_or_turn_off_check_alerts() -> None:
    off = NotificationRule(name="r", checks=False, destinations=[SlackChannel("#a")])
    assert not any(off.matches(event) for event in (stuck(), failing(), stale()))
    only = NotificationRule(
        name="r", checks={CheckKind.RUN_STUCK}, destinations=[SlackChannel("#a")]
    )
    assert [only.matches(event) for event in (stuck(), failing(), stale())] == [
        True,
        False,
        False,
    ]
    with pytest.raises(
        NotifierConfigError, match=r"unknown kind of check: got 'slow'\. Use True, False or some of"
    ):
        NotificationRule(name="r", checks=["slow"], destinations=[SlackChannel("#a")])  # type: ignore[list-item]


def test_a_rule_with_tags_alerts_only_on_checks_of_runs_with_those_tags() -> None:
    rule = NotificationRule(name="r", tags={"team": "data"}, destinations=[SlackChannel("#a")])
    assert rule.matches(stuck(team="data"))
    assert not rule.matches(stuck(team="web"))
    assert not rule.matches(failing())  # about a job: no run tags to match


# In a worker, against the Slack stand-in.


@pytest.fixture
def slack() -> Iterator[FakeSlackServer]:
    with FakeSlackServer() as server:
        yield server


@pytest.fixture
def settings(worker_settings: WorkerSettings, slack: FakeSlackServer) -> WorkerSettings:
    return worker_settings.model_copy(update={"slack_base_url": slack.base_url})


def with_check(rule: NotificationRule) -> CodeLocation:
    """The rule, and a check called ``nightly_stuck`` (so the hooks group knows it)."""
    check = replace(checked.hanging_too_long, name="nightly_stuck", job_name="nightly_etl")
    return replace(location(rule), checks={"nightly_stuck": check})


def test_a_rule_posts_a_check_alert_to_slack_and_the_runs_end_in_its_thread(
    redis_client: redis.Redis, settings: WorkerSettings, slack: FakeSlackServer
) -> None:
    rule = NotificationRule(
        name="oncall", jobs=["nightly_etl"], destinations=[SlackChannel("#alerts")]
    )
    loc = with_check(rule)
    burst(loc, settings)
    checked.FIRED.clear()
    fire(redis_client, stuck())

    burst(loc, settings)
    publish(redis_client, [run_ended(RunState.COMPLETED)])
    burst(loc, settings)

    alert, end = slack.messages()
    assert alert["channel"] == "#alerts" and "thread_ts" not in alert
    assert "Run still running after 2 h 5 min" in text_of(alert)
    assert end["thread_ts"] and "Run completed (recovered)" in text_of(end)
    assert [name for name, _ in checked.FIRED] == ["hanging_too_long"]  # the check's own function
    checked.FIRED.clear()


def test_a_rule_that_opts_out_sends_nothing_for_a_check(
    redis_client: redis.Redis, settings: WorkerSettings, slack: FakeSlackServer
) -> None:
    loc = with_check(
        NotificationRule(name="quiet", checks=False, destinations=[SlackChannel("#a")])
    )
    burst(loc, settings)
    fire(redis_client, stuck())

    worker = burst(loc, settings)

    assert worker.handled == 2 and slack.requests == []
    checked.FIRED.clear()


def test_a_silence_on_the_job_holds_a_check_alert_back(
    redis_client: redis.Redis, redis_url: str, settings: WorkerSettings, slack: FakeSlackServer
) -> None:
    async def add() -> None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            await SilenceStore(client, keys=KEYS).add(
                new_silence(duration=timedelta(hours=1), job="nightly_etl")
            )
        finally:
            await client.aclose()

    asyncio.run(add())
    loc = with_check(NotificationRule(name="oncall", destinations=[SlackChannel("#a")]))
    burst(loc, settings)
    fire(redis_client, stuck())

    burst(loc, settings)

    assert slack.requests == []
    [held] = suppressed(redis_client)
    assert (held["reason"], held["state"], held["run_id"]) == (
        "silenced",
        "check:run_stuck",
        "run-1",
    )
    checked.FIRED.clear()


def test_a_check_alert_is_never_held_back_by_the_rate_limit_but_counts_against_it(
    redis_client: redis.Redis, settings: WorkerSettings, slack: FakeSlackServer
) -> None:
    channel = SlackChannel("#alerts", max_per_minute=1)
    loc = with_check(NotificationRule(name="oncall", destinations=[channel]))
    burst(loc, settings)
    # The channel's budget is spent for this minute (and the next, should it turn).
    minute = int(time.time() // 60)
    rate_keys = [KEYS.alert_rate(channel.name, m) for m in (minute, minute + 1)]
    for key in rate_keys:
        redis_client.set(key, 5)
    fire(redis_client, stuck())

    burst(loc, settings)

    [alert] = slack.messages()
    assert "Run still running" in text_of(alert)
    assert suppressed(redis_client) == []
    assert sum(int(cast(bytes, redis_client.get(key))) for key in rate_keys) == 11
    checked.FIRED.clear()
