"""A one-slot handover between two threads: the consumer always gets the newest item.

Live stages must never build a queue (latency would grow without bound when the consumer is slow),
so a new item replaces an unread one and the replacement is counted as a drop. For offline work
(a file processed as fast as possible) `lossless=True` makes the producer wait for the slot instead.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class MailboxClosed(Exception):
    """The producer finished (cleanly, or with the error chained as __cause__)."""


class Mailbox(Generic[T]):
    def __init__(self, lossless: bool = False):
        self.lossless = lossless
        self.dropped = 0
        self._item: T | None = None
        self._full = False
        self._closed = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()

    def put(self, item: T) -> bool:
        """Hand over `item`; False when the mailbox is closed (the producer should stop)."""
        with self._cond:
            if self.lossless:
                self._cond.wait_for(lambda: not self._full or self._closed)
            if self._closed:
                return False
            if self._full:
                self.dropped += 1
            self._item, self._full = item, True
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> T | None:
        """The newest item, or None if none arrived within `timeout` seconds.

        Raises MailboxClosed once the producer has closed and the last item was taken.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._full or self._closed, timeout):
                return None
            if self._full:
                item, self._item, self._full = self._item, None, False
                self._cond.notify_all()
                return item
            raise MailboxClosed() from self._error

    def close(self, error: BaseException | None = None) -> None:
        """No more items; an unread item can still be taken. `error` is re-raised to the consumer."""
        with self._cond:
            self._closed = True
            self._error = error
            self._cond.notify_all()

    def discard(self) -> None:
        """Consumer side shutdown: drop any unread item and unblock a waiting producer."""
        with self._cond:
            self._closed = True
            self._item, self._full = None, False
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
