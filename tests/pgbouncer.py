"""A throwaway PgBouncer (Debian's package) in front of the test PostgreSQL, for the pooler tests.

Runs as the `postgres` OS user when we are root (PgBouncer refuses root), on a free loopback port,
trusting every user, in the pool mode asked for. `make test` installs the package when it can.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

BINARY = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class Bouncer:
    """PgBouncer in `root` (a directory it owns), forwarding every database to the server at `server_url`."""

    def __init__(self, root: Path, server_url: str, *, pool_mode: str = "transaction", pool_size: int = 10) -> None:
        self.root = root
        parts = urlsplit(server_url)
        self.server_host, self.server_port = parts.hostname or "127.0.0.1", parts.port or 5432
        self.user = parts.username or "postgres"
        self.pool_mode = pool_mode
        self.pool_size = pool_size
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        """A URL to `database` through the pooler."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def start(self) -> Bouncer:
        assert BINARY is not None, "pgbouncer is not installed"
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "users.txt").write_text(f'"{self.user}" ""\n')
        (self.root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={self.server_host} port={self.server_port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.root / 'users.txt'}\n"
            f"pool_mode = {self.pool_mode}\ndefault_pool_size = {self.pool_size}\nmax_client_conn = 500\n"
            f"logfile = {self.root / 'pgbouncer.log'}\n"
            "server_reset_query =\nignore_startup_parameters = extra_float_digits\n")
        cmd = [BINARY, str(self.root / "pgbouncer.ini")]
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            for f in self.root.iterdir():
                shutil.chown(f, "postgres")
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"pgbouncer did not start: {err.strip()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
