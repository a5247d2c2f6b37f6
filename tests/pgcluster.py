"""A throwaway PostgreSQL 15 cluster for tests, the bench and the demo.

Runs the server binaries as the `postgres` OS user when we are root (PostgreSQL refuses
root), on 127.0.0.1 with a free port and its Unix socket in the temp data directory.

    python tests/pgcluster.py start DIR          # prints the URL; DIR holds data and state
    python tests/pgcluster.py stop DIR
    python tests/pgcluster.py run -- CMD ARGS...  # a fresh cluster for CMD, stopped however CMD ends;
                                                  # CMD gets JOBCTL_TEST_DATABASE_URL

In tests, a `Cluster` can also listen on more addresses than loopback (trusting the clients it names),
or be a streaming replica of another (`replicate`) and be promoted (`promote`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port if port != 55432 else _free_port()


class Cluster:
    """One throwaway cluster in `root` (created if needed)."""

    def __init__(self, root: Path, *, listen: tuple[str, ...] = ("127.0.0.1",), trust: tuple[str, ...] = ()) -> None:
        self.root = root
        self.data = root / "data"
        self.port_file = root / "port"
        self.listen = listen
        """The addresses it listens on; the URL names the first."""
        self.trust = trust
        """Networks (CIDR) beyond loopback whose clients it lets in without a password."""

    @property
    def url(self) -> str:
        return self.url_at(self.listen[0])

    def url_at(self, address: str) -> str:
        """The URL of its `postgres` database at one of the addresses it listens on."""
        return f"postgresql://postgres@{address}:{self.port}/postgres"

    @property
    def port(self) -> int:
        return int(self.port_file.read_text())

    def _make_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")

    def start(self, extra: tuple[str, ...] = ()) -> str:
        self._make_root()
        if not (self.data / "PG_VERSION").exists():
            self.data.mkdir(mode=0o700, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(self.data, "postgres")
            subprocess.run(
                _as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "--username=postgres",
                              "--auth=trust", "--no-sync"]),
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
        if not self.port_file.exists():
            self.port_file.write_text(str(_free_port()))
        hba = self.data / "pg_hba.conf"
        lines = hba.read_text().splitlines()
        for network in self.trust:
            if (line := f"host all all {network} trust") not in lines:
                with hba.open("a") as out:
                    out.write(line + "\n")
        opts = (f"-c listen_addresses={','.join(self.listen)} -p {self.port} "
                f"-c unix_socket_directories={self.root}")
        for setting in extra:
            opts += f" -c {setting}"
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                          "-w", "-t", "60", "-o", opts, "start"]),
            check=True, stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while subprocess.run([str(PG_BIN / "pg_isready"), "-h", self.listen[0], "-p", str(self.port)],
                             stdout=subprocess.DEVNULL).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not become ready in 30 s")
            time.sleep(0.1)
        return self.url

    def replicate(self, primary: Cluster) -> None:
        """Make this (not yet created) cluster a streaming replica of `primary`, by pg_basebackup -R;
        `start` then runs it as a hot standby."""
        self._make_root()
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_basebackup"), "-D", str(self.data), "-h", "127.0.0.1",
                          "-p", str(primary.port), "-U", "postgres", "-R", "-X", "stream", "-c", "fast"]),
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        self.port_file.write_text(str(_free_port()))

    def promote(self) -> None:
        """Promote a standby to primary, returning once it accepts writes."""
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "promote"]),
                       check=True, stdout=subprocess.DEVNULL)

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"]),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )

    def destroy(self) -> None:
        self.stop()
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.root)


def run(cmd: list[str]) -> int:
    """Run `cmd` with a fresh cluster; the cluster is removed even when `cmd` fails or we are signalled."""
    import signal
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="jobctl-pg-"))
    os.chmod(root, 0o755)
    cluster = Cluster(root)

    def _terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        url = cluster.start()
        print(f"pgcluster: PostgreSQL at {url} (data in {root})", file=sys.stderr)
        return subprocess.run(cmd, env={**os.environ, "JOBCTL_TEST_DATABASE_URL": url}).returncode
    except KeyboardInterrupt:
        return 130
    finally:
        cluster.destroy()
        print("pgcluster: stopped", file=sys.stderr)


def main(argv: list[str]) -> int:
    if len(argv) > 2 and argv[1] == "run":
        return run(argv[3:] if argv[2] == "--" else argv[2:])
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        print("usage: pgcluster.py start|stop DIR | run -- CMD...", file=sys.stderr)
        return 2
    cluster = Cluster(Path(argv[2]).resolve())
    if argv[1] == "start":
        print(cluster.start())
    else:
        cluster.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
