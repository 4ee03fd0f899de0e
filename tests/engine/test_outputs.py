"""Op outputs in events: the scalar shortcut gives what the JSON round trip gives."""

from __future__ import annotations

import enum
import json

import pytest

from engine.outputs import MAX_OUTPUT_JSON_CHARS, summarise_output


class Colour(enum.IntEnum):
    RED = 1


def round_trip(value: object) -> object:
    """What ``summarise_output`` returned for every value before the shortcut."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return "summary"
    return json.loads(text) if len(text) <= MAX_OUTPUT_JSON_CHARS else "summary"


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(10**99),
        10**150,
        -0.0,
        1.5,
        float("nan"),
        float("inf"),
        "",
        "x" * 166,
        "\U0001f600" * 166,  # 12 JSON characters each: the longest str the shortcut takes
        "\U0001f600" * 167,
        "x" * 5_000,
        Colour.RED,
    ],
    ids=repr,
)
def test_scalars_come_out_as_the_json_round_trip_makes_them(value: object) -> None:
    summary = summarise_output(value)
    expected = round_trip(value)
    if expected == "summary":
        assert isinstance(summary, dict) and set(summary) == {"type", "repr"}
    else:
        assert summary == expected and type(summary) is type(expected)
