"""How livematte's commands stop: SIGTERM and SIGHUP as Ctrl-C."""

from __future__ import annotations

import signal

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def stop_as_ctrl_c() -> None:
    """SIGTERM and SIGHUP (kill, systemd, Docker, `timeout`, a closed terminal) stop a command as Ctrl-C
    does: sources closed, every output finalised, so a recording stays playable instead of being cut off
    without its index. Libraries that install their own handlers (Ray) call for this again after them."""
    for stop in STOP_SIGNALS:
        signal.signal(stop, signal.default_int_handler)
