"""Every transition of a run is one event, in order: retries, skips, failures, crashes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from bus import Keys, OpEvent, RunEvent, RunState
from engine import EngineSettings, RunResult, State, UpstreamFailedError, cancel_run
from engine.outputs import summarise_output
from tests.code_locations import flows
from tests.conftest import TEST_PREFIX
from tests.processes import wait_until
from tests.streams import read_events

KEYS = Keys(prefix=TEST_PREFIX)


@pytest.fixture(autouse=True)
def reset_attempts() -> Iterator[None]:
    flows.ATTEMPTS.clear()
    flows.FLAKY_BODY.clear()
    yield


def published(client: redis.Redis, run_id: str) -> list[RunEvent | OpEvent]:
    return [e for e in read_events(client, KEYS.stream_for_run(run_id)) if e.run_id == run_id]


def transitions(events: list[RunEvent | OpEvent]) -> list[tuple[str, str | None, str, int]]:
    return [
        (
            event.op.step_key if isinstance(event, OpEvent) else "run",
            None if event.from_state is None else str(event.from_state),
            str(event.to_state),
            event.op.attempt if isinstance(event, OpEvent) else event.run.attempt,
        )
        for event in events
    ]


def test_retries_a_skipped_op_and_a_failure_publish_this_exact_sequence(
    engine_settings: EngineSettings, redis_client: redis.Redis
) -> None:
    result = flows.retries_skip_failure.execute_in_process(
        raise_on_error=False, settings=engine_settings
    )
    events = published(redis_client, result.run_id)

    assert transitions(events) == [
        ("run", None, "pending", 1),
        ("run", "pending", "running", 1),
        ("flaky", None, "running", 1),
        ("flaky", "running", "retrying", 1),
        ("flaky", "retrying", "running", 2),
        ("flaky", "running", "retrying", 2),
        ("flaky", "retrying", "running", 3),
        ("flaky", "running", "completed", 3),
        ("broken", None, "running", 1),
        ("broken", "running", "retrying", 1),
        ("broken", "retrying", "running", 2),
        ("broken", "running", "failed", 2),
        ("downstream", None, "skipped", 1),
        ("broken_2", None, "running", 1),
        ("broken_2", "running", "retrying", 1),
        ("broken_2", "retrying", "running", 2),
        ("broken_2", "running", "failed", 2),
        ("run", "running", "failed", 1),
    ]
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    retrying = events[3]
    assert retrying.error is not None and retrying.error.type == "ConnectionError"
    assert retrying.hooks_triggered() == ()  # failure hooks wait for the last attempt
    assert [hook.name for hook in events[7].hooks_triggered()] == ["on_ok"]
    assert [hook.name for hook in events[11].hooks_triggered()] == ["on_fail"]
    assert events[12].message == "skipped: input from op 'broken' is failed"
    completed = events[7]
    assert isinstance(completed, OpEvent) and completed.op.outputs == {"result": 7}
    assert result.ops["downstream"].state == "skipped"
    assert result.ops["flaky"].attempts == 3
    # The run is over: no record and no liveness entry are left behind.
    assert redis_client.exists(KEYS.run_record(result.run_id)) == 0
    assert redis_client.zscore(KEYS.runs_alive(0), result.run_id) is None


def test_job_retries_publish_retrying_and_the_run_completes_on_the_second_attempt(
    engine_settings: EngineSettings, redis_client: redis.Redis
) -> None:
    result = flows.flaky_body.execute_in_process(settings=engine_settings)

    assert result.output == "done"
    assert transitions(published(redis_client, result.run_id)) == [
        ("run", None, "pending", 1),
        ("run", "pending", "running", 1),
        ("run", "running", "retrying", 1),
        ("run", "retrying", "running", 2),
        ("run", "running", "completed", 2),
    ]


def test_submitted_ops_run_concurrently_and_each_ops_events_stay_in_order(
    engine_settings: EngineSettings, redis_client: redis.Redis
) -> None:
    result = flows.fan_out.execute_in_process(settings=engine_settings)

    assert result.output == 0 + 1 + 4 + 9
    events = published(redis_client, result.run_id)
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    for step_key in ["square", "square_2", "square_3", "square_4"]:
        own = [
            (e.from_state, e.to_state)
            for e in events
            if isinstance(e, OpEvent) and e.op.step_key == step_key
        ]
        assert own == [(None, "pending"), ("pending", "running"), ("running", "completed")]


def test_system_exit_in_an_op_crashes_the_op_and_the_run_and_is_re_raised(
    engine_settings: EngineSettings, redis_client: redis.Redis
) -> None:
    with pytest.raises(SystemExit, match="Crashing on purpose!"):
        flows.crashing.execute_in_process(settings=engine_settings, run_id="crash-1")

    events = published(redis_client, "crash-1")
    assert transitions(events)[-2:] == [
        ("exits", "running", "crashed", 1),
        ("run", "running", "crashed", 1),
    ]
    crash = events[-1].crash
    assert crash is not None
    assert (crash.reason, crash.signal, crash.detected_by) == ("exception", "SystemExit", "engine")
    assert redis_client.zscore(KEYS.runs_alive(0), "crash-1") is None


def test_return_state_gives_the_final_state_instead_of_raising(
    engine_settings: EngineSettings,
) -> None:
    state = flows.retries_skip_failure(return_state=True, settings=engine_settings)

    assert isinstance(state, State)
    assert (state.name, state.is_failed()) == ("Failed", True)
    with pytest.raises(ValueError, match="cannot use 7"):
        state.result()


def test_an_op_whose_input_failed_is_skipped_and_raises_upstream_failed(
    engine_settings: EngineSettings,
) -> None:
    result = flows.skip_raises.execute_in_process(raise_on_error=False, settings=engine_settings)

    assert result.ops["downstream"].state == "skipped"
    assert isinstance(result.exception, UpstreamFailedError)
    with pytest.raises(
        UpstreamFailedError,
        match=r"op 'downstream' was skipped: its input from op 'broken' ended failed",
    ):
        raise result.exception


def test_cancel_run_from_python_stops_the_run_at_the_next_op(
    engine_settings: EngineSettings, redis_client: redis.Redis
) -> None:
    settings = engine_settings.model_copy(update={"heartbeat_interval_s": 0.05})
    flows.RELEASE.clear()
    flows.SEEN.clear()
    results: list[RunResult] = []
    runner = threading.Thread(
        target=lambda: results.append(
            flows.cancellable.execute_in_process(
                settings=settings, run_id="to-cancel", raise_on_error=False
            )
        )
    )
    runner.start()
    try:
        wait_until(
            lambda: redis_client.zscore(KEYS.runs_alive(0), "to-cancel"), what="the run to start"
        )
        assert cancel_run("to-cancel", settings=settings, reason="no longer needed") is True
        wait_until(
            lambda: any(e.to_state == "cancelling" for e in published(redis_client, "to-cancel")),
            what="cancelling",
        )
    finally:
        flows.RELEASE.set()
        runner.join(timeout=20)

    assert results[0].state is RunState.CANCELLED
    assert flows.SEEN == ["skipped: the run was asked to stop"]
    events = published(redis_client, "to-cancel")
    cancelling = next(e for e in events if e.to_state == "cancelling")
    assert cancelling.message == "no longer needed"
    assert transitions(events)[-3:] == [
        ("wait_for_release", "running", "completed", 1),
        ("downstream", None, "skipped", 1),
        ("run", "cancelling", "cancelled", 1),
    ]
    assert cancel_run("to-cancel", settings=settings) is False  # over: nothing to cancel


def test_outputs_that_are_not_small_json_are_summarised() -> None:
    assert summarise_output({"rows": 3}) == {"rows": 3}
    assert summarise_output(object) == {"type": "type", "repr": "<class 'object'>"}
    big = summarise_output("x" * 5_000)
    assert big == {"type": "str", "repr": "'" + "x" * 199 + "…"}


def test_a_cancel_interrupts_an_interruptible_op_at_once(
    engine_settings: EngineSettings, redis_client: redis.Redis
) -> None:
    settings = engine_settings.model_copy(update={"heartbeat_interval_s": 0.05})

    def cancel_when_running() -> None:
        wait_until(
            lambda: any(
                isinstance(e, OpEvent) and e.to_state == "running"
                for e in published(redis_client, "interrupted")
            ),
            what="the op to run",
        )
        cancel_run("interrupted", settings=settings)

    canceller = threading.Thread(target=cancel_when_running)
    canceller.start()
    started = time.monotonic()
    result = flows.interruptible_job.execute_in_process(
        settings=settings, run_id="interrupted", raise_on_error=False
    )
    canceller.join(timeout=10)

    assert time.monotonic() - started < 10  # not the op's 20 s
    assert result.state is RunState.CANCELLED
    assert transitions(published(redis_client, "interrupted"))[-3:] == [
        ("run", "running", "cancelling", 1),
        ("long_sleep", "running", "cancelled", 1),
        ("run", "cancelling", "cancelled", 1),
    ]
