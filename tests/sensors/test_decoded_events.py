"""Each entry is decoded once per worker, however many of its groups read it."""

from __future__ import annotations

import pytest

from bus.consumer import Delivery
from bus.errors import EventValidationError
from bus.events import RunEvent, RunInfo, encode_event
from bus.states import RunState
from sensors.decoded_events import DecodedEvents

PAYLOAD = encode_event(
    RunEvent(
        seq=1,
        run=RunInfo(run_id="r1", run_name="r1", job_name="etl"),
        from_state=None,
        to_state=RunState.PENDING,
    )
)


def test_a_second_group_gets_the_event_decoded_by_the_first() -> None:
    decoded = DecodedEvents(size=2)
    first = decoded.event(Delivery("s", "1-0", PAYLOAD))
    assert decoded.event(Delivery("s", "1-0", PAYLOAD)) is first
    assert decoded.event(Delivery("other", "1-0", PAYLOAD)) is not first  # another stream


def test_the_oldest_is_dropped_beyond_its_size() -> None:
    decoded = DecodedEvents(size=2)
    first = decoded.event(Delivery("s", "1-0", PAYLOAD))
    decoded.event(Delivery("s", "2-0", PAYLOAD))
    decoded.event(Delivery("s", "3-0", PAYLOAD))
    assert repr(decoded) == "<DecodedEvents kept=2 size=2>"
    assert decoded.event(Delivery("s", "1-0", PAYLOAD)) is not first  # decoded again


def test_an_invalid_entry_is_not_kept_and_fails_for_every_group() -> None:
    decoded = DecodedEvents(size=2)
    for _ in range(2):
        with pytest.raises(EventValidationError):
            decoded.event(Delivery("s", "1-0", b"not json"))
    assert repr(decoded) == "<DecodedEvents kept=0 size=2>"


def test_with_size_zero_nothing_is_kept() -> None:
    decoded = DecodedEvents(0)
    first = decoded.event(Delivery("s", "1-0", PAYLOAD))
    assert decoded.event(Delivery("s", "1-0", PAYLOAD)) is not first  # decoded again
    assert first == decoded.event(Delivery("s", "1-0", PAYLOAD))
