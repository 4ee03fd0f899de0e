"""A safe summary of op outputs for events: JSON values as they are, the rest described."""

from __future__ import annotations

import json
from typing import Final

from pydantic import JsonValue

#: An output whose JSON is longer than this is summarised instead of sent.
MAX_OUTPUT_JSON_CHARS: Final = 2_000
#: The ``repr`` in a summary is cut to this many characters.
MAX_OUTPUT_REPR_CHARS: Final = 200


def summarise_output(value: object) -> JsonValue:
    """``value`` if it is small JSON, else ``{"type": ..., "repr": ...}`` (truncated)."""
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
