"""How livematte's commands stop: SIGTERM and SIGHUP as Ctrl-C, and a first stop as a request."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def stop_as_ctrl_c() -> None:
    """SIGTERM and SIGHUP (kill, systemd, Docker, `timeout`, a closed terminal) stop a command as Ctrl-C
    does: sources closed, every output finalised, so a recording stays playable instead of being cut off
    without its index. Libraries that install their own handlers (Ray) call for this again after them."""
    for stop in STOP_SIGNALS:
        signal.signal(stop, signal.default_int_handler)


@dataclass
class StopSignal:
    """Whether first_stop_calls took a stop signal (the run then reports that it stopped early)."""

    came: bool = False


@contextmanager
def first_stop_calls(request_stop: Callable[[], None]) -> Iterator[StopSignal]:
    """Inside: the first Ctrl-C, SIGTERM or SIGHUP calls `request_stop` (which must only set flags the
    caller's loop polls) instead of raising KeyboardInterrupt on whatever line the main thread runs; the
    next one raises it, to skip the orderly stop's waits. Why: a KeyboardInterrupt raised just after
    threading.Condition.__enter__ took its lock leaves the lock held (CPython 3.11), and the worker that
    needs it next waited out the shutdown's bound (10 s) to stop. Off the main thread (no handler can be
    set there) it changes nothing."""
    taken = StopSignal()
    if threading.current_thread() is not threading.main_thread():
        yield taken
        return
    stops = (signal.SIGINT, *STOP_SIGNALS)
    before = {stop: signal.getsignal(stop) for stop in stops}

    def first(signum, frame) -> None:
        for stop in stops:
            signal.signal(stop, signal.default_int_handler)
        taken.came = True
        request_stop()

    for stop in stops:
        signal.signal(stop, first)
    try:
        yield taken
    finally:
        for stop, handler in before.items():
            signal.signal(stop, handler)
