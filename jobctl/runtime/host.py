"""Which host a runtime process is on, as far as pids go.

A supervisor releases the claims of processes of *its own host* whose pid is gone, at once. "Its own
host" cannot be the hostname: containers with host networking share one, and a pid seen from one
container means nothing in another, so two supervisors there would take each other for dead and
prune each other. Pids are comparable exactly between processes of one PID namespace on one boot of
one kernel: that triple is the host's identity. Processes elsewhere are pruned only when their
heartbeat goes silent.
"""

from __future__ import annotations

import os
import socket
from functools import cache

HOSTNAME = socket.gethostname()
"""The name operators see (`jobctl processes`, the monitor)."""


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


@cache
def host_id() -> str:
    """`hostname/boot id/pid namespace`: equal for two processes iff each can see the other's pid."""
    boot = _read("/proc/sys/kernel/random/boot_id") or "no-boot-id"
    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        namespace = "no-pid-namespace"
    return f"{HOSTNAME}/{boot}/{namespace}"
