"""Every code example of the two seed documents, ported, with its hooks run in a worker."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
import redis

from engine import EngineSettings
from notifiers.testing import FakeSlackServer
from sensors import build_hook_context, success_hook
from tests.code_locations import lifecycle, seeds_dagster, seeds_prefect
from tests.conftest import TEST_PREFIX
from tests.processes import wait_until, worker_process


def wait_for_calls(client: redis.Redis, count: int) -> list[dict[str, Any]]:
    return (
        wait_until(
            lambda: found if len(found := lifecycle.calls(client)) >= count else None,
            timeout_s=15,
            what=f"{count} hook calls",
        )
        or []
    )


def by_hook(calls: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for call in calls:
        grouped.setdefault(call.pop("hook"), []).append(call)
    return grouped


def test_dagster_op_hooks_document(
    redis_url: str, redis_client: redis.Redis, engine_settings: EngineSettings
) -> None:
    prod_config = {"resources": {"slack": {"config": {"token": {"env": "SLACK_TOKEN"}}}}}
    with (
        FakeSlackServer() as slack,
        worker_process(
            "tests.code_locations.seeds_dagster",
            redis_url=redis_url,
            prefix=TEST_PREFIX,
            env={"SLACK_TOKEN": "xoxp-from-the-worker", "HOOKBUS_SLACK_BASE_URL": slack.base_url},
        ) as worker,
    ):
        settings = engine_settings
        seeds_dagster.notif_all.execute_in_process(
            run_config=prod_config, raise_on_error=False, settings=settings
        )
        seeds_dagster.notif_all_configured.execute_in_process(
            raise_on_error=False, settings=settings
        )
        selective = seeds_dagster.selective_notif.execute_in_process(
            run_config=prod_config, raise_on_error=False, settings=settings
        )
        seeds_dagster.with_failure_info.execute_in_process(
            run_config={"ops": {"a": {"config": {"greeting": "hello"}}}},
            raise_on_error=False,
            settings=settings,
        )
        seeds_dagster.notif_all_dev.execute_in_process(raise_on_error=False, settings=settings)
        seeds_dagster.notif_all_prod.execute_in_process(
            run_config=prod_config, raise_on_error=False, settings=settings
        )

        requests = slack.wait_for_requests(4, timeout_s=15)
        calls = by_hook(wait_for_calls(redis_client, 7))  # every hook call the six runs make

    texts = sorted(request.body["text"] for request in requests)
    assert texts == ["Op a finished successfully", "Op b failed", "Op b failed", "Op b failed"]
    assert {request.headers["Authorization"] for request in requests} == {
        "Bearer xoxp-from-the-worker"
    }
    assert {call["pid"] for group in calls.values() for call in group} == {worker.pid}
    # the per-invocation hooks of selective_notif: only "a" has them
    [success] = calls["slack_message_on_success"]
    assert success == {
        "pid": worker.pid,
        "job": "selective_notif",
        "run_id": selective.run_id,
        "step_key": "a",
        "outputs": {"result": "hi"},
        "keys": ["slack"],
        "hook_name": "slack_message_on_success",
    }
    assert all(call["step_key"] == "b" for call in calls["slack_message_on_failure"])
    [info] = calls["my_failure_hook"]
    assert info["type_name"] == "ValueError" and info["has_traceback"] is True
    assert info["formatted"].endswith("ValueError: b is broken")
    assert info["config"] == {}
    # dev: the hardcoded mock resource, built in the worker, got the message instead of Slack
    assert [call["text"] for call in calls["mock_slack"]] == ["Op b failed"]


def test_build_hook_context_tests_a_hook_without_a_worker() -> None:
    my_conn = mock.MagicMock()
    # construct HookContext with mocked ``my_conn`` resource.
    context = build_hook_context(resources={"my_conn": my_conn})

    my_success_hook(context)

    assert my_conn.send.call_count == 1


@success_hook(required_resource_keys={"my_conn"})
def my_success_hook(context: Any) -> None:
    context.resources.my_conn.send("foo")


def test_prefect_state_change_hooks_document(
    redis_url: str, redis_client: redis.Redis, engine_settings: EngineSettings
) -> None:
    with worker_process(
        "tests.code_locations.seeds_prefect", redis_url=redis_url, prefix=TEST_PREFIX
    ) as worker:
        settings = engine_settings
        seeds_prefect.completes(settings=settings)
        seeds_prefect.task_fails(settings=settings)
        seeds_prefect.multiple_hooks(settings=settings)
        lazy_state = seeds_prefect.lazy_flow(return_state=True, settings=settings)
        _, task_run_state = seeds_prefect.ok_with_failure_flow(settings=settings)
        failed = seeds_prefect.failing_flow(return_state=True, settings=settings)
        with pytest.raises(SystemExit, match="Crashing on purpose!"):
            seeds_prefect.crashing_flow(settings=settings)
        seeds_prefect.running_hooks(settings=settings)

        calls = by_hook(wait_for_calls(redis_client, 12))

    assert {call.pop("pid") for group in calls.values() for call in group} == {worker.pid}
    assert calls["my_flow_hook"][0]["flow"] == "completes"
    assert calls["my_flow_hook"][0]["state"]["name"] == "Completed"
    assert calls["my_task_hook"][0]["task"] == "failing_task"
    assert calls["my_task_hook"][0]["state"]["message"] == "ValueError: task failed"
    assert calls["my_success_hook"] == [{"task": "multi_hooked", "state": "Completed"}]
    assert calls["my_failure_hook"] == [{"task": "multi_hooked", "state": "Failed"}]
    assert sorted(c["state"] for c in calls["my_succeed_or_fail_hook"]) == ["Completed", "Failed"]
    # default arguments of a hook stay; the hook saw the state the run returned
    [lazy] = calls["my_hook"]
    assert lazy["my_arg"] == "custom_value" and lazy["state"]["name"] == lazy_state.name
    # partial(...) keyword arguments travel in the event as JSON
    [kwargs] = calls["my_kwargs_hook"]
    assert {key: kwargs[key] for key in ("x", "y")} == {"x": "foo", "y": 42}
    assert kwargs["state"]["name"] == task_run_state.name == "Failed"
    # on_failure waits for the retries: one call, on the second attempt
    [slack] = calls["notify_slack"]
    assert failed.name == "Failed" and slack["run_count"] == 2
    assert "entered Failed with message:\n\nValueError: oops!" in slack["text"]
    assert "Tags: {'team': 'data'}" in slack["text"]
    assert "Scheduled start: 20" in slack["text"]
    assert sorted(calls["on_running_hook"], key=lambda call: str(call["of"])) == [
        {"of": "running_hooks", "state": "Running", "attempt": 1},
        {"of": "starts", "state": "Running", "attempt": 1},
    ]
    [crash] = calls["delete_cloud_run_job"]
    assert crash["flow"] == "crashing_flow" and crash["state"]["name"] == "Crashed"
