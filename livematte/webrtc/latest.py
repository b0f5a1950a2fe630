"""A one-slot handover between asyncio tasks: the reader always gets the newest item.

The asyncio twin of livematte.mailbox: a live stream must never queue frames behind a slow stage,
so a new item replaces an unread one and the replacement is counted as a drop.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestClosed(Exception):
    """The slot was closed: no more items will come."""


class Latest(Generic[T]):
    def __init__(self) -> None:
        self.dropped = 0
        self._item: T | None = None
        self._full = False
        self._closed = False
        self._changed = asyncio.Event()

    def put(self, item: T) -> None:
        if self._closed:
            return
        if self._full:
            self.dropped += 1
        self._item, self._full = item, True
        self._changed.set()

    async def get(self) -> T:
        """The newest item not taken yet; waits for one. Raises LatestClosed once closed."""
        while not self._full:
            if self._closed:
                raise LatestClosed()
            self._changed.clear()
            await self._changed.wait()
        item, self._item, self._full = self._item, None, False
        return item

    def close(self) -> None:
        """Wake every waiting reader with LatestClosed; an unread item is dropped."""
        self._closed, self._item, self._full = True, None, False
        self._changed.set()
