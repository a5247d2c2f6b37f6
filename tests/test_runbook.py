"""Every command of docs/runbook.md, run as an operator would, on both backends.

The runbook's ```sh blocks hold its commands: each line (a trailing `\\` continues it) is one
command, run by `bash -o pipefail -c` in an application directory with `jobctl` resolving to this
virtualenv's, against a database seeded so that each command has something to act on (failed,
crashed, finished, discarded and stuck jobs, a backlog in a paused queue). A line ending in
`#: skip (why)` is not run; one ending in `#: exit N` must exit N, every other one 0. Commands
that use `$SUPERVISOR_PID` run against a real `jobctl start` started here.

The runbook's sections change what they touch, so each gets a database of its own (a schema
on PostgreSQL, a file on SQLite) and the sections run side by side: the run costs about as
much as its slowest section, not the sum of them.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

import jobctl
from jobctl import database, operations, urls
from jobctl.records import RunError, Selector
from jobctl.store import Session, open_store
from tests.jobs_for_tests import Echo
from tests.runtime_helpers import connection, env_for, query, scalar, start, wait_for, write_config

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = ROOT / "docs" / "runbook.md"
VENV_BIN = ROOT / ".venv" / "bin" if (ROOT / ".venv" / "bin" / "jobctl").exists() else Path(sys.executable).parent

QUEUE = "reports"
"""The queue the runbook's `$QUEUE` names: failures, a crashed job and a backlog, paused."""
CLASS = "tests.jobs_for_tests:Echo"
"""The class the runbook's `$CLASS` names (every seeded job is one)."""
DEAD_HOST = "dead-host"
"""The host of a worker that died holding a claim."""
TRACEBACK = "Traceback (most recent call last):\n  File \"app/jobs.py\", line 12, in perform\n"

SITUATIONS = (
    "First look",
    "Backlog growing",
    "Failure spike",
    "Jobs stuck as claimed",
    "A poison job",
    "Deploying with a graceful drain",
    "Database failover or restart",
    "A batch that does not end",
    "Tables filling with finished jobs",
)
"""The runbook's sections that hold commands, each a situation an operator meets."""
BATCH_SECTION = "A batch that does not end"

MARKER = re.compile(r"\s#:\s*(?:skip\s+(?P<why>\(.+\))|exit\s+(?P<status>\d+)\b.*)\s*$")
PLACEHOLDER = re.compile(r"\$\{?([A-Z][A-Z0-9_]*)")


# --- reading the runbook ------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One command of the runbook and what it is expected to do."""

    section: str
    """The `##` heading it is under."""
    subsection: str
    """The `###` heading it is under, or ""."""
    line: int
    """Its first line in runbook.md."""
    text: str
    """The command as written (continuation lines included)."""
    skip: str | None
    """Why it is not run, when it is not."""
    status: int
    """The exit status it must have."""

    def __str__(self) -> str:
        return f"runbook.md:{self.line}: {self.text}"


def parse_runbook(text: str) -> list[Command]:
    """The commands of every ```sh block, in order."""
    commands: list[Command] = []
    section = subsection = ""
    fence: str | None = None
    pending: list[str] = []
    first = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if fence is None:
            if raw.startswith("## "):
                section, subsection = raw[3:].strip(), ""
            elif raw.startswith("### "):
                subsection = raw[4:].strip()
            elif line.startswith("```"):
                fence = line[3:].strip()
            continue
        if line == "```":
            assert not pending, f"runbook.md:{first}: the block ends inside a continued command"
            fence = None
            continue
        if fence != "sh" or (not pending and (not line or line.startswith("#"))):
            continue
        if not pending:
            first = number
        pending.append(line)
        if not line.endswith("\\"):
            commands.append(_command(section, subsection, first, "\n".join(pending)))
            pending = []
    assert fence is None, "runbook.md ends inside a fenced block"
    return commands


def _command(section: str, subsection: str, line: int, text: str) -> Command:
    last = text.splitlines()[-1]
    found = MARKER.search(last)
    assert found or "#:" not in last, f"runbook.md:{line}: a `#:` marker is `#: skip (why)` or `#: exit N`"
    return Command(section, subsection, line, text, found["why"] if found else None,
                   int(found["status"]) if found and found["status"] else 0)


COMMANDS = parse_runbook(RUNBOOK.read_text(encoding="utf-8"))


def runnable(section: str | None = None) -> list[Command]:
    return [c for c in COMMANDS if c.skip is None and section in (None, c.section)]


# --- the state the commands act on --------------------------------------------------------


@dataclass
class Seeded:
    """One section's database and the jobs put in it."""

    url: str
    backend: str
    app: Path
    """The application directory the commands run in (config/queue.yml)."""
    failed: list[int] = field(default_factory=list)
    """Failed on QUEUE with a ValueError."""
    timeouts: list[int] = field(default_factory=list)
    """Failed on `webhooks` with a TimeoutError."""
    crashed: int = 0
    """Failed on QUEUE after crashing its worker (jobctl.WorkerCrashed)."""
    stuck: int = 0
    """Claimed on `mailers` by a worker of DEAD_HOST whose heartbeat stopped an hour ago."""
    backlog: list[int] = field(default_factory=list)
    """Ready on QUEUE, which is paused."""
    old_finished: list[int] = field(default_factory=list)
    """Finished two days ago."""
    new_finished: list[int] = field(default_factory=list)
    """Finished just now."""
    old_discarded: list[int] = field(default_factory=list)
    """Discarded eight days ago."""
    old_failed: int = 0
    """Failed on `default` 31 days ago with a ValueError."""
    supervisor: subprocess.Popen[bytes] | None = None
    """The `jobctl start` of a section that uses $SUPERVISOR_PID."""
    batch: int = 0
    """A batch on `imports` (its section only): two members finished, one waiting a day for its retry."""
    batch_holder: int = 0
    """That batch's member waiting for its retry."""


def ago(backend: str, seconds: int) -> str:
    """SQL for the database's time `seconds` ago."""
    if backend == "postgresql":
        return f"now() - interval '{seconds} seconds'"
    return f"CAST(strftime('%s', 'now') AS REAL) - {seconds}"


def claim(session: Session, queue: str, ids: list[int], process_id: int) -> int:
    """Claim exactly `ids` (the only ready jobs on `queue`) as `process_id`; the claim token."""
    token = random.getrandbits(60) + 1
    claimed = session.claim(Selector("queue", queue), len(ids), token=token, process_id=process_id)
    assert sorted(j.id for j in claimed) == sorted(ids)
    return token


def fail(session: Session, queue: str, n: int, error: RunError) -> list[int]:
    """`n` jobs on `queue` that ran once and failed with `error`, through the runtime's statements."""
    ids = [Echo.set(queue=queue).perform_later(queue, i).id for i in range(n)]
    token = claim(session, queue, ids, 1)
    for job_id in ids:
        assert session.end(job_id, token=token, process_id=1, state="failed", error=error)
    return ids


def seed(url: str, backend: str, app: Path) -> Seeded:
    """Every situation of the runbook at once, made with the runtime's own statements."""
    s = Seeded(url, backend, app)
    jobctl.configure(database_url=url)
    store = database.get_store()
    session = store.session()
    try:
        history = [Echo.perform_later("history", i).id for i in range(6)]
        token = claim(session, "default", history, 1)
        session.finish(history[:5], token=token, process_id=1)
        assert session.end(history[5], token=token, process_id=1, state="failed",
                           error=RunError("ValueError", "bad input", TRACEBACK))
        s.old_finished, s.new_finished, s.old_failed = history[:3], history[3:5], history[5]
        s.old_discarded = [Echo.perform_later("flood", i).id for i in range(2)]
        assert operations.discard(store, s.old_discarded).changed == 2

        s.crashed = Echo.set(queue=QUEUE).perform_later("poison", 7).id
        worker = session.register_process(kind="worker", hostname=socket.gethostname(), pid=os.getpid(),
                                          supervisor_id=None, queues=QUEUE, threads=1, metadata="{}")
        claim(session, QUEUE, [s.crashed], worker)
        assert session.crash_jobs(worker, [s.crashed], 1, "worker process died: SIGKILL (signal 9)") == [
            (s.crashed, "failed")]
        session.deregister([worker])

        s.failed = fail(session, QUEUE, 2, RunError("ValueError", "bad input", TRACEBACK))
        s.timeouts = fail(session, "webhooks", 3, RunError("TimeoutError", "read timed out", TRACEBACK))

        dead = session.register_process(kind="worker", hostname=DEAD_HOST, pid=999_999, supervisor_id=None,
                                        queues="mailers", threads=3, metadata="{}")
        s.stuck = Echo.set(queue="mailers").perform_later("stuck").id
        claim(session, "mailers", [s.stuck], dead)

        s.backlog = [Echo.set(queue=QUEUE).perform_later("backlog", i).id for i in range(5)]
        assert store.pause_queue(QUEUE)
    finally:
        session.close()
        jobctl.configure(database_url=None)
    # Age the history and the dead worker (the only writes not made by jobctl's own statements).
    with connection(url) as conn:
        for ids, age in ((s.old_finished, 2 * 86400), (s.old_discarded, 8 * 86400), ([s.old_failed], 31 * 86400)):
            conn.execute(f"UPDATE jobctl_jobs SET finished_at = {ago(backend, age)} "
                         f"WHERE id IN ({','.join(map(str, ids))})")
        conn.execute(f"UPDATE jobctl_jobs SET claimed_at = {ago(backend, 3600)} WHERE id = {s.stuck}")
        conn.execute(f"UPDATE jobctl_processes SET last_heartbeat_at = {ago(backend, 3600)} WHERE id = {dead}")
    return s


def seed_batch(s: Seeded) -> None:
    """A batch that does not end: its last member failed a run and waits a day for the next."""
    jobctl.configure(database_url=s.url)
    session = database.get_store().session()
    try:
        with jobctl.batch(on_success=Echo("imported"), on_finish=Echo("import ended"), description="nightly import"):
            ids = [Echo.set(queue="imports").perform_later("row", i).id for i in range(3)]
        token = claim(session, "imports", ids, 1)
        session.finish(ids[:2], token=token, process_id=1, members=True)
        assert session.retry(ids[2], token=token, process_id=1, delay=86400, queue=None, priority=None,
                             error=RunError("TimeoutError", "the row's API timed out", TRACEBACK)) == "scheduled"
        [found] = database.get_store().list_batches()
        s.batch, s.batch_holder = found.id, ids[2]
    finally:
        session.close()
        jobctl.configure(database_url=None)


def placeholders(s: Seeded, command: Command) -> dict[str, str]:
    """The runbook's shell variables for one command: the seeded jobs its situation is about."""
    job = {
        ("Jobs stuck as claimed", ""): s.stuck,
        ("A poison job", "It kills its worker"): s.crashed,
        # The hanging job once TERM made its worker return it: ready, in its paused queue.
        ("A poison job", "It never ends"): s.backlog[0],
    }.get((command.section, command.subsection), s.failed[0])
    values = {"ID": str(job), "QUEUE": QUEUE, "CLASS": CLASS, "BATCH": str(s.batch)}
    if s.supervisor is not None:
        values["SUPERVISOR_PID"] = str(s.supervisor.pid)
    return values


# --- running a section --------------------------------------------------------------------


@dataclass
class Ran:
    """What one section's commands did."""

    seeded: Seeded
    results: list[tuple[Command, subprocess.CompletedProcess[str]]] = field(default_factory=list)
    supervisor_status: int | None = None

    def output(self, prefix: str, *, nth: int = 0) -> str:
        """Standard output of the `nth` command run that starts with `prefix`."""
        found = [done.stdout for c, done in self.results if c.text.startswith(prefix)]
        assert len(found) > nth, f"no command run starts with {prefix!r}"
        return found[nth]


def run_section(section: str, s: Seeded) -> Ran:
    ran = Ran(s)
    commands = [c for c in COMMANDS if c.section == section]
    if any("$SUPERVISOR_PID" in c.text for c in commands if c.skip is None):
        s.supervisor = start(s.url, s.app / "config" / "queue.yml", log=s.app / "supervisor.log")
        # Registered with its worker and dispatcher: there is something to drain.
        wait_for(lambda: scalar(s.url, "SELECT count(*) FROM jobctl_processes WHERE hostname = ?",
                                (socket.gethostname(),)) >= 3, timeout=30, what="jobctl start to register")
    env = env_for(s.url)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    try:
        for command in commands:
            if command.skip is not None:
                continue
            done = subprocess.run(["bash", "-o", "pipefail", "-c", command.text], cwd=s.app,
                                  env={**env, **placeholders(s, command)}, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=60, check=False)
            ran.results.append((command, done))
    finally:
        if s.supervisor is not None:
            if s.supervisor.poll() is None:
                s.supervisor.send_signal(signal.SIGTERM)
            ran.supervisor_status = s.supervisor.wait(30)
    return ran


# --- what each situation's commands must have done ---------------------------------------


def states(s: Seeded, ids: list[int]) -> set[str]:
    marks = ",".join("?" * len(ids))
    return {row[0] for row in query(s.url, f"SELECT state FROM jobctl_jobs WHERE id IN ({marks})", tuple(ids))}


def exists(s: Seeded, job_id: int) -> bool:
    return bool(scalar(s.url, "SELECT count(*) FROM jobctl_jobs WHERE id = ?", (job_id,)))


def paused(s: Seeded) -> set[str]:
    return {row[0] for row in query(s.url, "SELECT queue FROM jobctl_pauses")}


def check_first_look(r: Ran) -> None:
    s = r.seeded
    assert "reports" in r.output("jobctl stats") and "paused" in r.output("jobctl stats")
    figures = json.loads(r.output("jobctl stats --json"))
    assert isinstance(figures.pop("failed_last_minute"), int)  # its window may straddle a minute: no exact count
    assert figures == {"ready": len(s.backlog), "claimed": 1, "failed": len(s.failed) + len(s.timeouts) + 2,
                       "processes": 0}  # the dead worker's heartbeat is an hour old


def check_backlog(r: Ran) -> None:
    s = r.seeded
    assert r.output("jobctl stats --json").split() == [QUEUE]  # the paused queues
    # Only the dead worker, still registered: `processes` is 0 in stats, so no supervisor runs.
    assert r.output("jobctl processes --json") == f"{DEAD_HOST}\tpid 999999\tmailers\tbusy 0/3\n"
    assert r.output("jobctl jobs --state ready").split("\n")[0] == f"{len(s.backlog)}\t{CLASS}"
    assert states(s, s.backlog) == {"discarded"}
    assert paused(s) == {QUEUE, "low"}
    assert r.output("jobctl discard", nth=1).strip() == str(len(s.backlog))


def check_failure_spike(r: Ran) -> None:
    s = r.seeded
    grouped = r.output("jobctl jobs --state failed")
    assert f"{len(s.timeouts)} {CLASS}  TimeoutError: read timed out" in grouped
    assert f"job {s.failed[0]}" in r.output("jobctl show")
    assert json.loads(r.output("jobctl retry", nth=1)) == {"changed": len(s.failed) + 1, "skipped": []}
    assert states(s, [*s.failed, s.crashed]) == {"ready"}
    assert states(s, s.timeouts) == {"ready"}  # retried by their last error, through xargs
    assert states(s, [s.old_failed]) == {"failed"}  # on another queue, another error
    assert paused(s) == set()


def check_stuck(r: Ran) -> None:
    s = r.seeded
    assert r.output("jobctl jobs --state claimed").split("\t")[0] == str(s.stuck)
    assert f"\tworker\t{DEAD_HOST}\tpid 999999\t" in r.output("jobctl processes")
    assert states(s, [s.stuck]) == {"claimed"}  # discard left it alone, exit 1
    assert json.loads(r.output("jobctl stats --json")) == {"claimed": 1, "processes": 0}


def check_poison(r: Ran) -> None:
    s = r.seeded
    assert r.output("jobctl jobs --state failed").strip() == f"{s.crashed}\t{CLASS}\tcrashes 1"
    shown = json.loads(r.output("jobctl show"))
    assert shown["errors"] == [{"attempt": 1, "class": "jobctl.WorkerCrashed",
                                "message": "worker process died: SIGKILL (signal 9)"}]
    saved = json.loads((s.app / f"poison-{s.crashed}.json").read_text())
    assert saved["id"] == s.crashed and saved["arguments"]["args"] == ["poison", 7]
    assert states(s, [s.crashed, s.backlog[0]]) == {"discarded"}
    [(state, queue, arguments)] = query(s.url, "SELECT state, queue, arguments FROM jobctl_jobs WHERE id > ?",
                                        (s.backlog[-1],))
    assert (state, queue) == ("ready", "default")  # enqueued anew with the saved arguments
    assert (arguments if isinstance(arguments, dict) else json.loads(arguments))["args"] == ["poison", 7]
    assert paused(s) == set()


def check_drain(r: Ran) -> None:
    s = r.seeded
    assert s.supervisor is not None
    assert r.output("jobctl processes --json").strip() == str(s.supervisor.pid)
    assert r.supervisor_status == 0  # TERM: a graceful stop
    assert scalar(s.url, "SELECT count(*) FROM jobctl_processes") == 0
    # The supervisor released the dead host's claim when it started (and its worker likely ran the job).
    assert states(s, [s.stuck]) <= {"ready", "finished"}
    assert json.loads(r.output("jobctl stats --json")) == {"processes": 0, "claimed": 0}


def check_failover(r: Ran) -> None:
    assert r.output("jobctl stats --json") == ""  # reachable: the health check prints nothing
    assert int(r.output("jobctl db migrate")) >= 1
    assert f"worker\t{DEAD_HOST}\tpid 999999\t" in r.output("jobctl processes")


def check_batch(r: Ran) -> None:
    s = r.seeded
    assert f"{s.batch}  running" in r.output("jobctl batches --state running")
    assert r.output("jobctl batches --state open") == ""  # "0 batches" goes to stderr
    shown = r.output("jobctl batch $BATCH")
    assert f"batch {s.batch}  running" in shown and f"held by      job {s.batch_holder} (`jobctl show ID`)" in shown
    assert r.output("jobctl batch $BATCH --json").split() == [str(s.batch_holder)]
    assert f"job {s.batch_holder}  scheduled" in r.output("jobctl show")
    assert states(s, [s.batch_holder]) == {"discarded"}
    ended = r.output("jobctl batch $BATCH --json", nth=1).splitlines()
    assert ended[0] == "failed" and ended[1] == "success job null" and ended[2].startswith("finish job ")
    assert scalar(s.url, "SELECT count(*) FROM jobctl_jobs WHERE CAST(arguments AS TEXT) LIKE ?",
                  ("%import ended%",)) == 1


def check_tables(r: Ran) -> None:
    s = r.seeded
    assert json.loads(r.output("jobctl stats --json")) == {"finished": 5, "failed": 7, "discarded": 2}
    assert r.output("jobctl processes --json").strip() == "0"
    assert r.output("jobctl clear --state discarded").strip() == "2"
    assert not any(exists(s, i) for i in [*s.old_finished, *s.old_discarded])
    assert all(exists(s, i) for i in [*s.new_finished, s.old_failed])  # recent, and failed (dry run)


CHECKS: dict[str, Callable[[Ran], None]] = {
    "First look": check_first_look,
    "Backlog growing": check_backlog,
    "Failure spike": check_failure_spike,
    "Jobs stuck as claimed": check_stuck,
    "A poison job": check_poison,
    "Deploying with a graceful drain": check_drain,
    "Database failover or restart": check_failover,
    "A batch that does not end": check_batch,
    "Tables filling with finished jobs": check_tables,
}


# --- one database per section -------------------------------------------------------------


@pytest.fixture
def section_urls(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """A fresh, migrated database of the backend under test for every situation."""
    found: dict[str, str] = {}
    schemas: list[str] = []
    server = str(request.getfixturevalue("pg_server")) if backend == "postgresql" else ""
    try:
        for i, section in enumerate(SITUATIONS):
            if backend == "postgresql":
                schemas.append(f"t_{uuid.uuid4().hex[:12]}")
                with psycopg.connect(server, autocommit=True) as conn:
                    conn.execute(f"CREATE SCHEMA {schemas[-1]}")
                sep = "&" if "?" in server else "?"
                found[section] = f"{server}{sep}options={quote(f'-csearch_path={schemas[-1]}')}"
            else:
                found[section] = f"sqlite:///{tmp_path / f'section{i}.sqlite3'}"
            store = open_store(urls.parse(found[section]))
            store.migrate()
            store.close()
        yield found
    finally:
        if schemas:
            with psycopg.connect(server, autocommit=True) as conn:
                for schema in schemas:
                    conn.execute(f"DROP SCHEMA {schema} CASCADE")


# --- the tests ----------------------------------------------------------------------------


def test_the_runbook_covers_every_situation_with_commands() -> None:
    sections = {c.section for c in COMMANDS}
    assert sections <= {"How to use this page", *SITUATIONS}, f"sections without a test: {sections}"
    for situation in SITUATIONS:
        assert runnable(situation), f"## {situation} has no command the test runs"
    assert set(CHECKS) == set(SITUATIONS)
    subsections = {(c.section, c.subsection) for c in COMMANDS}
    assert {("A poison job", "It kills its worker"), ("A poison job", "It never ends")} <= subsections
    assert any(c.status for c in COMMANDS), "the `#: exit N` marker is documented; keep one use of it"


def test_every_placeholder_is_set_by_the_test() -> None:
    known = {"ID", "QUEUE", "CLASS", "SUPERVISOR_PID", "BATCH"}
    for command in runnable():
        unknown = set(PLACEHOLDER.findall(command.text)) - known
        assert not unknown, f"{command}: the test sets no {sorted(unknown)}"


def test_markers_are_read() -> None:
    [parsed] = parse_runbook("## S\n```sh\njobctl a \\\n  --b    #: exit 3 (why)\n# note\n```\n```text\nx\n```\n")
    assert (parsed.section, parsed.line, parsed.status, parsed.skip) == ("S", 3, 3, None)
    assert parsed.text == "jobctl a \\\n--b    #: exit 3 (why)"
    [skipped] = parse_runbook("## S\n### T\n  ```sh\n  jobctl top  #: skip (interactive)\n  ```\n")
    assert (skipped.subsection, skipped.skip) == ("T", "(interactive)")
    with pytest.raises(AssertionError, match="marker"):
        parse_runbook("## S\n```sh\njobctl top  #: skipped\n```\n")


@pytest.mark.slow
def test_every_runbook_command_runs(backend: str, section_urls: dict[str, str], tmp_path: Path) -> None:
    seeded: dict[str, Seeded] = {}
    for section, url in section_urls.items():
        app = tmp_path / f"app-{SITUATIONS.index(section)}"
        (app / "config").mkdir(parents=True)
        write_config(app / "config" / "queue.yml", processes=1, threads=2, shutdown_timeout=3, alive_threshold=4)
        seeded[section] = seed(url, backend, app)
        if section == BATCH_SECTION:
            seed_batch(seeded[section])
    with ThreadPoolExecutor(max_workers=len(SITUATIONS)) as pool:
        runs = dict(zip(SITUATIONS, pool.map(lambda name: run_section(name, seeded[name]), SITUATIONS),
                        strict=True))
    assert sum(len(r.results) for r in runs.values()) == len(runnable())
    wrong = [f"{command}\n  exit {done.returncode}, expected {command.status}; stderr ends: "
             f"{' | '.join(done.stderr.strip().splitlines()[-3:])}"
             for ran in runs.values() for command, done in ran.results if done.returncode != command.status]
    for section, ran in runs.items():
        try:
            CHECKS[section](ran)
        except AssertionError as exc:
            wrong.append(f"## {section}: the commands did not do what the runbook says: {exc}")
    assert not wrong, "\n".join(wrong)
