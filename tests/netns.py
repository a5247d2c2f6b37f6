"""A second host for tests: a network namespace joined to this one by a veth pair on a private /30.

The namespace's end is `inner` (10.a.b.c+2), ours is `outer` (10.a.b.c+1). Taking our end down
silently cuts the link: the namespace keeps its address and route, and its packets go nowhere, as on
a dead switch port or a partitioned network. Needs root and iproute2's `ip`.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


def unavailable() -> str | None:
    """Why a namespace cannot be made here (None: it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "network namespaces need iproute2's `ip` (apt-get install iproute2)"
    return None


class Link:
    """A network namespace and the veth pair that joins it to us. Names and addresses are random, so
    several test runs on one machine do not meet."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100_000}{random.randrange(100):02d}"
        self.namespace = f"jobctl-{tag}"
        self.outer_device = f"jco{tag}"  # interface names: at most 15 characters
        self.inner_device = f"jci{tag}"
        used = _ip("-o", "-4", "addr").stdout
        while True:
            a, b, c = random.randrange(200, 250), random.randrange(256), random.randrange(64) * 4
            prefix = f"10.{a}.{b}."
            if prefix not in used:
                break
        self.outer = f"{prefix}{c + 1}"
        """Our end's address: what a server here listens on for the namespace."""
        self.inner = f"{prefix}{c + 2}"
        """The namespace's address."""

    def create(self) -> Link:
        """Make the namespace and the link, up; raise RuntimeError (with ip's message) if we cannot."""
        steps = [
            ("netns", "add", self.namespace),
            ("link", "add", self.outer_device, "type", "veth", "peer", "name", self.inner_device),
            ("link", "set", self.inner_device, "netns", self.namespace),
            ("addr", "add", f"{self.outer}/30", "dev", self.outer_device),
            ("link", "set", self.outer_device, "up"),
            ("-n", self.namespace, "addr", "add", f"{self.inner}/30", "dev", self.inner_device),
            ("-n", self.namespace, "link", "set", self.inner_device, "up"),
            ("-n", self.namespace, "link", "set", "lo", "up"),
        ]
        for step in steps:
            done = _ip(*step)
            if done.returncode != 0:
                self.destroy()
                raise RuntimeError(f"ip {' '.join(step)}: {done.stderr.strip()}")
        return self

    def prefix(self) -> list[str]:
        """The command prefix that runs a program inside the namespace."""
        return ["ip", "netns", "exec", self.namespace]

    def down(self) -> None:
        """Cut the link at our end."""
        subprocess.run(["ip", "link", "set", self.outer_device, "down"], check=True, timeout=30)

    def up(self) -> None:
        """Restore the link."""
        subprocess.run(["ip", "link", "set", self.outer_device, "up"], check=True, timeout=30)

    def destroy(self) -> None:
        """Remove the link and the namespace (deleting one end of a veth pair deletes both)."""
        _ip("link", "del", self.outer_device)
        _ip("netns", "del", self.namespace)
