"""Table columns for the CLI's rich tables that never cut an identifier.

An id in a table is copied into the next command (``hookbus dlq replay <id>``), so a
column of ids is as wide as its longest value even in an 80-column terminal; the other
columns wrap instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Column


def id_column(header: str, values: Iterable[str]) -> Column:
    """A column as wide as ``header`` and the longest of ``values``, never wrapped or cut."""
    width = max((len(value) for value in values), default=0)
    return Column(header, no_wrap=True, overflow="fold", min_width=max(width, len(header)))
