"""An exception's traceback as text, quickly: it is on the way to every failure's alert.

The engine captures the traceback of a failing op (and again as its run fails) before it
publishes the ``failed`` event, so the time taken here delays the alert. Python's own
``traceback.format_exception`` finds where to put the ``^^^^`` markers under each frame
(``co_positions`` walked up to the failing instruction, and an ``ast.parse``): 0.2 to 0.4
ms for a failing op (measured). ``StackSummary.extract`` and ``format`` without them still
cost 70 µs for the benchmark's nine frames, in ``FrameSummary`` objects, a ``stat`` of each
source file and a pass that folds repeated lines; writing each frame's two lines directly
costs 17 µs, and gives the same text but for repeated frames (see ``traceback_text``).
Without the ``stat``, a source file edited since its lines were cached shows the line that
ran, where Python shows the edited file's.
"""

from __future__ import annotations

import linecache
import traceback


def traceback_text(exc: BaseException) -> str:
    """``exc``'s traceback as Python prints it, less the ``^^^^`` lines under each frame.

    Repeated frames are not folded into "[Previous line repeated N more times]": a
    ``RecursionError`` (or a decorator stacked many times) shows every frame, and the event
    keeps the tail, which names the repeated lines. Nor does ``sys.tracebacklimit`` apply.
    An exception group, or an exception never raised, is formatted by Python.
    """
    if isinstance(exc, BaseExceptionGroup) or exc.__traceback__ is None:
        return "".join(traceback.format_exception(exc, chain=False))
    lines = ["Traceback (most recent call last):\n"]
    for frame, line_number in traceback.walk_tb(exc.__traceback__):
        code = frame.f_code
        lines.append(f'  File "{code.co_filename}", line {line_number}, in {code.co_name}\n')
        if line_number is None:  # a code object without line numbers: "line None"
            continue
        # ``f_globals`` lets linecache find source that a loader holds (a zipped package).
        source = linecache.getline(code.co_filename, line_number, frame.f_globals).strip()
        if source:
            lines.append(f"    {source}\n")
    lines += traceback.format_exception_only(exc)
    return "".join(lines)
