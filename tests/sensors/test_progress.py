"""The worker's progress line: one INFO line per interval with what it did, none if idle."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from sensors.upkeep import report_progress


def test_progress_says_what_happened_since_the_last_line_and_nothing_when_idle(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counts = {"entries": 0, "handlers_succeeded": 0}

    async def main() -> None:
        task = asyncio.create_task(report_progress(lambda: dict(counts), interval_s=0.05))
        await asyncio.sleep(0.07)  # one idle interval: no line
        counts.update(entries=5, handlers_succeeded=7)
        await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.INFO, logger="sensors.upkeep"):
        asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress")]
    assert lines == ["progress in the last 0.05s: entries=5 handlers_succeeded=7"]
