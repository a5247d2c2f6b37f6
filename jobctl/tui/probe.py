"""Memory and CPU of the registered processes that run on this host (psutil), for the Processes panel."""

from __future__ import annotations

import socket
from collections.abc import Iterable

import psutil

from jobctl.records import ProcessInfo

PID_REUSE_SLACK_S = 120.0
"""A local process created this long after its row says it started is another program (a reused pid)."""


class LocalProbe:
    """Memory and CPU of registered processes that run on this host, through psutil. Keeps each
    `psutil.Process` between refreshes, so that CPU is measured over the time between them."""

    def __init__(self, hostname: str | None = None) -> None:
        self.hostname = hostname or socket.gethostname()
        """This host's name, as the runtime registers it."""
        self._seen: dict[int, psutil.Process] = {}

    def sample(self, rows: Iterable[ProcessInfo]) -> dict[int, tuple[int | None, float | None]]:
        """(rss bytes, cpu %) by row id for the local rows; cpu is None on a process's first sample."""
        found: dict[int, tuple[int | None, float | None]] = {}
        alive: dict[int, psutil.Process] = {}
        for row in rows:
            if row.hostname != self.hostname:
                continue
            pid = row.pid
            proc = self._seen.get(pid)
            try:
                first = proc is None or not proc.is_running()
                if first:
                    proc = psutil.Process(pid)
                    if proc.create_time() > row.started_at.timestamp() + PID_REUSE_SLACK_S:
                        continue
                assert proc is not None
                with proc.oneshot():
                    rss = int(proc.memory_info().rss)
                    cpu = proc.cpu_percent(None)
            except (psutil.Error, OSError):
                continue
            alive[pid] = proc
            found[row.id] = (rss, None if first else cpu)
        self._seen = alive
        return found
