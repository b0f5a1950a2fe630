"""A private network for the WebRTC tests: a fresh network namespace with a veth pair inside it.

ICE never uses 127.0.0.1 and would otherwise pick the machine's own external address, so the server,
the clients and the browser all run inside this namespace (`ip netns exec`), where the only routes
are its loopback and the two 10.x addresses of the veth pair. The namespace is deleted afterwards.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import pytest


@dataclass(frozen=True)
class Namespace:
    name: str
    addresses: tuple[str, str]  # the two veth ends, both inside the namespace

    def command(self, *args: str) -> list[str]:
        """`args` as a command that runs inside the namespace."""
        return ["ip", "netns", "exec", self.name, *args]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@contextmanager
def network_namespace() -> Iterator[Namespace]:
    """Skips the test (with the reason) where namespaces cannot be made: not root, or no `ip netns`."""
    if os.geteuid() != 0:
        pytest.skip("WebRTC tests run in a private network namespace, which needs root (ip netns add)")
    if shutil.which("ip") is None:
        pytest.skip("WebRTC tests need the `ip` command (Debian package iproute2) to make a network namespace")
    name = f"lm-{secrets.token_hex(4)}"
    subnet = f"10.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"
    try:
        _ip("netns", "add", name)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot create a network namespace ({exc.stderr.strip()})")
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "link", "add", "lm0", "type", "veth", "peer", "name", "lm1")
        for device, host in (("lm0", 1), ("lm1", 2)):
            _ip("-n", name, "addr", "add", f"{subnet}.{host}/24", "dev", device)
            _ip("-n", name, "link", "set", device, "up")
        yield Namespace(name, (f"{subnet}.1", f"{subnet}.2"))
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=30)
