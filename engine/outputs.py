"""A safe summary of op outputs for events: JSON values as they are, the rest described."""

from __future__ import annotations

import json
import math
from typing import Final

from pydantic import JsonValue

#: An output whose JSON is longer than this is summarised instead of sent.
MAX_OUTPUT_JSON_CHARS: Final = 2_000
#: The ``repr`` in a summary is cut to this many characters.
MAX_OUTPUT_REPR_CHARS: Final = 200
#: A ``str`` this short is under ``MAX_OUTPUT_JSON_CHARS`` as JSON whatever it holds (a
#: character is at most 12 JSON characters: an escaped surrogate pair).
_SHORT_STR_CHARS: Final = (MAX_OUTPUT_JSON_CHARS - 2) // 12
#: An ``int`` within ± this is under ``MAX_OUTPUT_JSON_CHARS`` as JSON.
_SHORT_INT: Final = 10**100


def summarise_output(value: object) -> JsonValue:
    """``value`` if it is small JSON, else ``{"type": ..., "repr": ...}`` (truncated)."""
    if _is_short_json_scalar(value):
        return value  # type: ignore[return-value]  # a JSON round trip would not change it
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        text = None
    if text is not None and len(text) <= MAX_OUTPUT_JSON_CHARS:
        return json.loads(text)  # type: ignore[no-any-return]
    described = repr(value)
    if len(described) > MAX_OUTPUT_REPR_CHARS:
        described = described[:MAX_OUTPUT_REPR_CHARS] + "…"
    return {"type": type(value).__qualname__, "repr": described}


def _is_short_json_scalar(value: object) -> bool:
    """Whether ``value`` is JSON as it is and short enough, without encoding it (most op
    outputs are: the engine summarises one per op)."""
    # Exact types: an IntEnum or a str subclass takes the long way.
    if type(value) is str:
        return len(value) <= _SHORT_STR_CHARS
    if type(value) is int:
        return -_SHORT_INT < value < _SHORT_INT
    if type(value) is float:
        return math.isfinite(value)
    return value is None or type(value) is bool
