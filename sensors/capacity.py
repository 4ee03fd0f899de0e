"""How many entries a worker holds at once, taken and given back in counts."""

from __future__ import annotations

import asyncio


class Capacity:
    """How many entries a worker may hold at once, taken and given back in counts.

    A batch takes its slots in one step: an ``asyncio.Semaphore`` taken once per entry
    cost two calls per entry, a measurable share of a no-op hook's cost at thousands a
    second. Only one caller may wait at a time (``Intake`` takes slots under a lock).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.free = size
        self._freed = asyncio.Event()

    def __repr__(self) -> str:
        return f"<Capacity free={self.free} size={self.size}>"

    async def take(self, count: int) -> None:
        """Take ``count`` slots (at most ``size``), waiting until that many are free."""
        if count > self.size:
            raise ValueError(f"cannot take {count} slots of {self.size}")
        while self.free < count:
            self._freed.clear()
            await self._freed.wait()
        self.free -= count

    def give(self, count: int = 1) -> None:
        """Give back ``count`` slots."""
        self.free += count
        self._freed.set()
