"""The wire format: round trips, versioning, and refusal of invalid data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bus import (
    SCHEMA_VERSION,
    CheckEvent,
    CheckKind,
    ErrorInfo,
    EventValidationError,
    HookRef,
    OpEvent,
    OpInfo,
    OpState,
    RunEvent,
    RunInfo,
    RunState,
    decode_event,
    encode_event,
)
from bus.events import MAX_EVENT_BYTES, MAX_TRACEBACK_CHARS

RUN = RunInfo(run_id="r1", run_name="nightly-r1", job_name="nightly", tags={"team": "data"})


def failed_op_event() -> OpEvent:
    try:
        raise ValueError("bad row")
    except ValueError as exc:
        error = ErrorInfo.from_exception(exc)
    return OpEvent(
        seq=3,
        run=RUN,
        op=OpInfo(name="load", step_key="load", attempt=2, max_attempts=3),
        hooks=(HookRef(ref="m:h", name="h", style="state", on=("failed",), hook_kwargs={"x": 1}),),
        error=error,
        from_state=OpState.RUNNING,
        to_state=OpState.FAILED,
    )


def test_op_event_round_trips_through_json() -> None:
    event = failed_op_event()
    decoded = decode_event(encode_event(event))
    assert decoded == event
    assert isinstance(decoded, OpEvent)
    assert decoded.error is not None and decoded.error.type == "ValueError"
    assert "raise ValueError" in decoded.error.traceback


def test_error_info_traceback_names_each_line_without_column_markers() -> None:
    def explode(values: dict[str, int]) -> int:
        return values["a"] + values["b"]

    try:
        explode({"a": 1})
    except KeyError as exc:
        error = ErrorInfo.from_exception(exc)

    lines = error.traceback.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert 'return values["a"] + values["b"]' in lines[-2] and lines[-1] == "KeyError: 'b'"
    assert not [line for line in lines if line.strip().strip("^~") == ""]


def test_error_info_of_an_exception_group_shows_its_members_and_a_bare_one_its_line() -> None:
    try:
        raise ExceptionGroup("two failed", [ValueError("v"), KeyError("k")])
    except ExceptionGroup as exc:
        group = ErrorInfo.from_exception(exc)

    assert "ValueError: v" in group.traceback and "KeyError: 'k'" in group.traceback
    assert ErrorInfo.from_exception(ValueError("never raised")).traceback == (
        "ValueError: never raised\n"
    )


def test_run_event_round_trips_and_carries_the_schema_version() -> None:
    event = RunEvent(seq=1, run=RUN, from_state=None, to_state=RunState.PENDING)
    raw = encode_event(event)
    assert f'"schema_version":{SCHEMA_VERSION}'.encode() in raw
    assert decode_event(raw) == event


def test_error_info_keeps_the_cause_chain_and_caps_the_traceback() -> None:
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise RuntimeError("x" * 10) from inner
    except RuntimeError as exc:
        error = ErrorInfo.from_exception(exc)
    assert error.cause is not None and error.cause.type == "KeyError"
    huge = ErrorInfo.from_exception(ValueError("y" * 50_000))
    assert len(huge.traceback) <= MAX_TRACEBACK_CHARS + 100
    assert "characters cut" in huge.message


def test_hooks_triggered_selects_by_target_state() -> None:
    event = failed_op_event()
    assert [hook.ref for hook in event.hooks_triggered()] == ["m:h"]
    completed = event.model_copy(update={"to_state": OpState.COMPLETED})
    assert completed.hooks_triggered() == ()


def test_repr_names_run_step_and_transition() -> None:
    assert repr(failed_op_event()) == (
        "<OpEvent run_id='r1' job='nightly' seq=3 step_key='load' attempt=2 running -> failed>"
    )


@pytest.mark.parametrize(
    ("raw", "reason", "match"),
    [
        (b"{not json", "invalid_json", "Invalid JSON"),
        (b'{"type": "run", "schema_version": 99}', "unknown_schema_version", "upgrade the worker"),
        (b'{"type": "nope"}', "schema", "tag"),
        (b"x" * (MAX_EVENT_BYTES + 1), "oversized", "limit"),
    ],
)
def test_invalid_entries_are_refused_with_a_reason(raw: bytes, reason: str, match: str) -> None:
    with pytest.raises(EventValidationError, match=match) as info:
        decode_event(raw)
    assert info.value.reason == reason


def test_unknown_fields_are_refused() -> None:
    raw = encode_event(RunEvent(seq=1, run=RUN, from_state=None, to_state=RunState.RUNNING))
    with pytest.raises(EventValidationError, match="surprise") as info:
        decode_event(raw.replace(b'"seq":1', b'"seq":1,"surprise":true'))
    assert info.value.reason == "schema"


def test_events_are_immutable() -> None:
    event = RunEvent(seq=1, run=RUN, from_state=None, to_state=RunState.RUNNING)
    with pytest.raises(ValueError, match="frozen"):
        event.seq = 2


def stuck_check_event() -> CheckEvent:
    return CheckEvent(
        event_id="e" * 32,
        occurred_at=datetime(2026, 1, 1, 5, 0, tzinfo=UTC),
        check_name="nightly_stuck",
        kind=CheckKind.RUN_STUCK,
        job_name="nightly",
        message="run r1 of job nightly has been running for 120 min (limit 30 min)",
        within_s=1800,
        run=RUN,
        run_state=RunState.RUNNING,
        state_since=datetime(2026, 1, 1, 3, 0, tzinfo=UTC),
    )


def test_check_event_round_trips_through_json() -> None:
    event = stuck_check_event()
    decoded = decode_event(encode_event(event))
    assert decoded == event
    assert isinstance(decoded, CheckEvent)
    assert (decoded.type, decoded.schema_version, decoded.run_id) == ("check", 1, "r1")
    assert repr(decoded) == (
        "<CheckEvent check='nightly_stuck' kind=run_stuck job='nightly' run_id='r1'>"
    )


def test_a_job_level_check_event_has_no_run() -> None:
    event = CheckEvent(
        check_name="etl_failing",
        kind=CheckKind.FAILURE_COUNT,
        job_name="etl",
        message="job etl failed 3 times",
        within_s=3600,
        count=3,
        failures=3,
    )
    decoded = decode_event(encode_event(event))
    assert decoded == event and decoded.run_id is None
    assert len(event.event_id) == 32


@pytest.mark.parametrize(
    ("change", "reason", "match"),
    [
        ((b'"kind":"run_stuck"', b'"kind":"slow"'), "schema", "kind"),
        ((b'"schema_version":1', b'"schema_version":2'), "unknown_schema_version", "upgrade"),
        ((b'"count":0', b'"count":0,"seq":4'), "schema", "seq"),
        ((b'"within_s":1800.0', b'"within_s":-1'), "schema", "within_s"),
    ],
)
def test_invalid_check_events_are_refused_with_a_reason(
    change: tuple[bytes, bytes], reason: str, match: str
) -> None:
    raw = encode_event(stuck_check_event())
    assert change[0] in raw
    with pytest.raises(EventValidationError, match=match) as info:
        decode_event(raw.replace(*change))
    assert info.value.reason == reason


def test_check_events_are_immutable() -> None:
    with pytest.raises(ValueError, match="frozen"):
        stuck_check_event().count = 2


def test_an_event_id_that_could_not_name_a_key_is_refused_as_schema() -> None:
    good = RunEvent(
        seq=1,
        run=RunInfo(run_id="r", run_name="r", job_name="etl"),
        from_state=None,
        to_state=RunState.PENDING,
    )
    raw = encode_event(good).replace(good.event_id.encode(), b"evil\\u0000x", 1)
    with pytest.raises(EventValidationError) as caught:
        decode_event(raw)
    assert caught.value.reason == "schema"
    assert "event_id" in caught.value.detail
