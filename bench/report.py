"""The benchmark's result: one row per figure, with its target and its ratio to the floor."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure.

    Attributes:
        section: the issue's numbered section it belongs to (``"1 Redis floor"``…).
        name: what was measured.
        value: the measurement (``None``: could not be measured, see ``note``).
        unit: its unit (``"ms"``, ``"events/s"``, ``"MB"``, ``"s"``, ``"×"``).
        target: the target as text (``"≤ 2 ms"``), or ``""`` for the floor itself.
        meets: whether ``value`` meets the target (``None``: no target).
        floor_ratio: ``value`` divided by the matching Redis floor figure of this run.
        floor_name: which floor figure ``floor_ratio`` is relative to.
        note: how it was measured, or why it is missing.
    """

    section: str
    name: str
    value: float | None
    unit: str
    target: str = ""
    meets: bool | None = None
    floor_ratio: float | None = None
    floor_name: str = ""
    note: str = ""


def at_most(limit: float) -> Callable[[float], bool]:
    """A check that a value is ``<= limit``."""
    return lambda value: value <= limit


def at_least(limit: float) -> Callable[[float], bool]:
    """A check that a value is ``>= limit``."""
    return lambda value: value >= limit


def figure(
    section: str,
    name: str,
    value: float | None,
    unit: str,
    *,
    target: str = "",
    check: Callable[[float], bool] | None = None,
    floor: tuple[str, float] | None = None,
    note: str = "",
) -> Figure:
    """Build a ``Figure``, working out whether it meets its target and its floor ratio."""
    meets = None if value is None or check is None else check(value)
    ratio = None
    if value is not None and floor is not None and floor[1] > 0:
        ratio = value / floor[1]
    return Figure(
        section=section,
        name=name,
        value=value,
        unit=unit,
        target=target,
        meets=meets,
        floor_ratio=ratio,
        floor_name=floor[0] if floor else "",
        note=note,
    )


def median_run(runs: Sequence[Sequence[Figure]]) -> list[Figure]:
    """One table from several runs: for each figure, the run whose value is the median.

    The whole row of that run is kept (value, target met, ratio to that run's floor), so
    each row stays consistent; the note gives the range over the runs.
    """
    merged = []
    for rows in zip(*runs, strict=True):
        measured = sorted((fig for fig in rows if fig.value is not None), key=_value)
        if len(measured) < 2:
            merged.append(measured[0] if measured else rows[0])
            continue
        middle = measured[(len(measured) - 1) // 2]
        spread = f"median of {len(measured)} runs: {_value_text(measured[0])} … "
        spread += _value_text(measured[-1])
        note = f"{middle.note}; {spread}" if middle.note else spread
        merged.append(dataclasses.replace(middle, note=note))
    return merged


def _value(fig: Figure) -> float:
    return fig.value if fig.value is not None else 0.0


def _value_text(fig: Figure) -> str:
    if fig.value is None:
        return "n/a"
    value = fig.value
    if value.is_integer() and fig.unit in ("", "runs"):
        return f"{value:.0f} {fig.unit}".rstrip()
    if abs(value) >= 1000:
        return f"{value:,.0f} {fig.unit}"
    if abs(value) >= 10:
        return f"{value:.1f} {fig.unit}"
    return f"{value:.3f} {fig.unit}"


def _meets_text(fig: Figure) -> str:
    if fig.meets is None:
        return ""
    return "[green]yes[/]" if fig.meets else "[red]no[/]"


def render(figures: Sequence[Figure], *, title: str, console: Console) -> None:
    """Print the table of figures."""
    table = Table(title=title, show_lines=False)
    for column in ("section", "figure", "measured", "target", "met", "× floor", "notes"):
        table.add_column(column, overflow="fold")
    section = ""
    for fig in figures:
        ratio = f"{fig.floor_ratio:.2f}× {fig.floor_name}" if fig.floor_ratio is not None else ""
        table.add_row(
            fig.section if fig.section != section else "",
            fig.name,
            _value_text(fig),
            fig.target,
            _meets_text(fig),
            ratio,
            fig.note,
        )
        section = fig.section
    console.print(table)


def to_markdown(figures: Sequence[Figure]) -> str:
    """The table as Markdown (for ``docs/performance.md``)."""
    lines = [
        "| section | figure | measured | target | met | × floor | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for fig in figures:
        ratio = f"{fig.floor_ratio:.2f}× {fig.floor_name}" if fig.floor_ratio is not None else ""
        met = "" if fig.meets is None else ("yes" if fig.meets else "**no**")
        lines.append(
            f"| {fig.section} | {fig.name} | {_value_text(fig)} | {fig.target} | {met} | "
            f"{ratio} | {fig.note} |"
        )
    return "\n".join(lines)


def to_json(figures: Sequence[Figure]) -> str:
    """The figures as JSON, for comparing runs."""
    return json.dumps([asdict(fig) for fig in figures], indent=2)
