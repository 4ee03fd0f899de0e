"""Small statistics over samples: nearest-rank percentiles and medians."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(samples: Sequence[float], pct: float) -> float:
    """The nearest-rank ``pct`` percentile (0 < pct <= 100) of ``samples``.

    Raises:
        ValueError: when there are no samples.
    """
    if not samples:
        raise ValueError(f"percentile {pct!r} of no samples: got []. Take some measurements.")
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def median(samples: Sequence[float]) -> float:
    """The median of ``samples`` (several trials of one figure)."""
    return statistics.median(samples)
