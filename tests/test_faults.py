"""Faults that must not jam, crash or lose anything (issue 19, SPEC 9): jobs raising BaseException,
a full or locked SQLite file, rows with unreadable arguments or hostile class paths, file modes.

Real `jobctl start` processes and real CLI runs, on both backends where the fault can happen.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import jobctl
from jobctl import urls
from jobctl.errors import DatabaseError
from jobctl.records import ClaimedJob, RunError, Selector
from jobctl.runtime.execution import Executor, error_of
from jobctl.store import open_store
from tests import runtime_jobs as rj
from tests.jobs_for_tests import Echo
from tests.runtime_helpers import children_of, cli, connection, query, scalar, start, stop, wait_for, write_config


def states(url: str) -> dict[str, int]:
    return dict(query(url, "SELECT state, count(*) FROM jobctl_jobs GROUP BY state"))


def set_column(url: str, job_id: int, column: str, value: str) -> None:
    """Overwrite one column of a job row, as a hand edit or a hostile writer would."""
    with connection(url) as conn:
        sql = f"UPDATE jobctl_jobs SET {column} = ? WHERE id = ?"
        if not isinstance(conn, sqlite3.Connection):
            sql = sql.replace("?", "%s")
        conn.execute(sql, (value, job_id))


def running_children(proc: subprocess.Popen[bytes], count: int = 2) -> list[int]:
    """The pids of `jobctl start`'s children once all `count` of them (a worker, a dispatcher) run."""
    def found() -> list[int] | None:
        pids = children_of(proc.pid)
        return pids if len(pids) == count else None

    return wait_for(found, what=f"{count} children")


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def claimed_job(job_id: int, class_path: str, arguments: str = '{"args":[],"kwargs":{}}') -> ClaimedJob:
    return ClaimedJob(job_id, "default", class_path, 0, arguments, 0, 0)


# -- 1. a job raising BaseException ------------------------------------------------------------


@pytest.mark.parametrize("job, error_class", [
    (rj.RaisesKeyboardInterrupt, "KeyboardInterrupt"),
    (rj.AwaitsCancelledTask, "asyncio.exceptions.CancelledError"),
    (rj.RaisesHalt, "tests.runtime_jobs.Halt"),
])
def test_executor_turns_a_base_exception_into_a_failed_run(job: type[jobctl.Job], error_class: str) -> None:
    outcome = Executor().run(claimed_job(1, jobctl.job.job_class_path(job)), executions=1)
    assert outcome.state == "failed"
    assert outcome.error is not None and outcome.error.error_class == error_class
    assert outcome.error.traceback and "perform" in outcome.error.traceback


def test_an_exception_whose_str_raises_still_gives_an_error() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    error = error_of(Unprintable())
    assert error.message.endswith("Unprintable: str() failed>")


@pytest.mark.slow
@pytest.mark.usefixtures("configured")
def test_base_exceptions_fail_their_jobs_and_the_thread_runs_the_jobs_behind(database_url: str, backend: str,
                                                                            tmp_path: Path) -> None:
    url = database_url
    with connection(url) as conn:
        conn.execute(rj.RUNS_DDL[backend])
    bad = [rj.RaisesKeyboardInterrupt.perform_later(), rj.AwaitsCancelledTask.perform_later(),
           rj.RaisesHalt.perform_later()]
    behind = [rj.Record.perform_later(f"behind {i}") for i in range(5)]
    log = tmp_path / "log"
    proc = start(url, write_config(tmp_path / "queue.yml", threads=1, processes=1), log=log)
    try:
        workers = running_children(proc)
        wait_for(lambda: states(url) == {"failed": 3, "finished": 5}, timeout=30,
                 what="3 failed and 5 finished jobs")
        assert children_of(proc.pid) == workers  # the worker lived: nothing crashed or restarted
    finally:
        assert stop(proc) == 0
    got = {h.id: jobctl.get_job(h.id) for h in bad}
    assert [(i.attempts, i.crashes, [e.error_class for e in i.errors]) for i in got.values()] == [
        (1, 0, ["KeyboardInterrupt"]), (1, 0, ["asyncio.exceptions.CancelledError"]),
        (1, 0, ["tests.runtime_jobs.Halt"])]
    assert got[bad[0].id].errors[0].message == "raised by the job"
    assert got[bad[2].id].errors[0].message == "halted by the job"
    assert sorted(r[0] for r in query(url, "SELECT tag FROM test_runs")) == [f"behind {i}" for i in range(len(behind))]
    assert scalar(url, "SELECT count(*) FROM jobctl_jobs WHERE state = 'claimed'") == 0
    assert scalar(url, "SELECT count(*) FROM jobctl_processes") == 0
    assert "Traceback" not in log.read_text()


# -- 2. a full disk under SQLite ---------------------------------------------------------------


def test_sqlite_full_at_commit_is_a_database_error_and_the_connection_stays_usable(sqlite_url: str) -> None:
    # max_page_count makes this connection's file "full": SQLite raises SQLITE_FULL exactly as for a full disk.
    store = open_store(urls.parse(sqlite_url))
    store.migrate()
    session = store.session()
    try:
        jobctl.configure(database_url=sqlite_url)
        handle = Echo.perform_later(1)
        [job] = session.claim(Selector("any"), 1, token=7, process_id=1)
        pages = session.conn.execute("PRAGMA page_count").fetchone()[0]  # type: ignore[attr-defined]
        session.conn.execute(f"PRAGMA max_page_count = {pages}")  # type: ignore[attr-defined]
        big = RunError("ValueError", "boom", "x" * 200_000)
        with pytest.raises(DatabaseError, match=r"^database .*jobs\.sqlite3: database or disk is full"):
            session.end(job.id, token=7, process_id=1, state="failed", error=big)
        session.conn.execute(f"PRAGMA max_page_count = {pages * 100}")  # type: ignore[attr-defined]
        assert session.end(job.id, token=7, process_id=1, state="failed", error=big)  # rolled back, usable
        assert handle.state == "failed"

        own = store._raw()  # type: ignore[attr-defined]
        pages = own.execute("PRAGMA page_count").fetchone()[0]
        own.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(DatabaseError, match="database or disk is full"):
            store.insert_job(Echo("y" * 200_000).to_new_job())
        assert not own.in_transaction
    finally:
        jobctl.configure(database_url=None)
        session.close()
        store.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs (root only: CI runs as root)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a small tmpfs needs root to mount (CI runs as root); the max_page_count test covers the rest")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the max_page_count test covers the rest")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Fill the disk to the last byte; the filler file's path."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        for size in (1 << 16, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    return filler


@pytest.mark.slow
def test_a_full_disk_under_sqlite_backs_off_and_recovers_when_space_returns(small_disk: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{small_disk / 'jobs.sqlite3'}"
    store = open_store(urls.parse(url))
    store.migrate()
    store.close()
    jobctl.configure(database_url=url)
    log = tmp_path / "log"
    try:
        total = 400
        jobctl.perform_all_later([rj.SleepOnly(0.02) for _ in range(total)])
        proc = start(url, write_config(tmp_path / "queue.yml", threads=2, processes=1), log=log)
        try:
            children = running_children(proc)
            wait_for(lambda: states(url).get("finished", 0) >= 20, what="the first jobs to finish")
            filler = fill(small_disk)
            enqueued = cli("enqueue", "tests.runtime_jobs:SleepOnly", "[0]", url=url)
            assert enqueued.returncode == 69, enqueued
            assert "database or disk is full" in one_line(enqueued.stderr)
            wait_for(lambda: "database or disk is full" in log.read_text(), timeout=30, what="the full disk logged")
            assert proc.poll() is None and children_of(proc.pid) == children  # nothing exited
            filler.unlink()
            wait_for(lambda: states(url) == {"finished": total}, timeout=60, what="every job finished")
            assert children_of(proc.pid) == children
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- log:\n{log.read_text()[-3000:]}") from None
        finally:
            assert stop(proc) == 0
    finally:
        jobctl.configure(database_url=None)
    text = log.read_text()
    assert "Traceback" not in text, text
    worker_lines = [ln for ln in text.splitlines() if "database or disk is full" in ln and "worker" in ln]
    assert 1 <= len(worker_lines) <= 2, worker_lines  # one line, not one per retry
    assert "database works again" in text
    assert scalar(url, "SELECT count(*) FROM jobctl_jobs WHERE state = 'claimed'") == 0
    assert scalar(url, "SELECT count(*) FROM jobctl_processes") == 0


# -- 3. a locked SQLite file -------------------------------------------------------------------


@pytest.mark.slow
def test_verbs_on_a_locked_sqlite_file_say_one_line_and_exit_69(sqlite_url: str) -> None:
    jobctl.configure(database_url=sqlite_url)
    try:
        ready = Echo.perform_later(1)
        Echo.set(queue="done").perform_later(2)
        session = open_store(urls.parse(sqlite_url)).session()
        [done] = session.claim(Selector("queue", "done"), 1, token=3, process_id=1)
        session.finish([done.id], token=3, process_id=1)
        session.close()
    finally:
        jobctl.configure(database_url=None)
    path = urls.parse(sqlite_url).target
    verbs = [["enqueue", "tests.jobs_for_tests:Echo", "[1]"], ["pause", "default"], ["discard", str(ready.id)],
             ["clear", "--yes"], ["db", "migrate"]]
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with ThreadPoolExecutor(len(verbs)) as pool:  # one busy timeout for all of them
            results = list(pool.map(lambda args: cli(*args, url=sqlite_url), verbs))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    for args, result in zip(verbs, results, strict=True):
        assert result.returncode == 69, (args, result)
        line = one_line(result.stderr)
        assert line == (f"jobctl: database {path}: database is locked (another connection held its write lock "
                        "for over 5s); try again"), (args, line)
    assert states(sqlite_url) == {"ready": 1, "finished": 1}  # nothing changed
    assert scalar(sqlite_url, "SELECT count(*) FROM jobctl_jobs") == 2


# -- 4. a row whose arguments are not jobctl's JSON --------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("configured")
def test_a_row_with_unreadable_arguments_is_listed_shown_and_failed(database_url: str, backend: str,
                                                                   tmp_path: Path) -> None:
    url = database_url
    good = [Echo.perform_later(i) for i in range(3)]
    bad = rj.Flaky.perform_later()  # retry_on ValueError: a JSON error must not be retried
    text = "not json {" if backend == "sqlite" else '"just text"'  # PostgreSQL's json column refuses non-JSON
    set_column(url, bad.id, "arguments", text)

    listed = cli("jobs", "--json", url=url)
    assert listed.returncode == 0, listed
    shown = {j["id"]: j["arguments"] for j in json.loads(listed.stdout)}
    assert set(shown) == {bad.id, *(h.id for h in good)}
    assert shown[bad.id] == ({"unreadable": "not json {"} if backend == "sqlite" else "just text")
    table = cli("jobs", url=url)
    assert table.returncode == 0 and str(bad.id) in table.stdout, table
    one = cli("show", str(bad.id), url=url)
    assert one.returncode == 0 and ("unreadable" in one.stdout or "just text" in one.stdout), one

    proc = start(url, write_config(tmp_path / "queue.yml", threads=2, processes=1), log=tmp_path / "log")
    try:
        wait_for(lambda: states(url) == {"finished": 3, "failed": 1}, timeout=30, what="3 finished, 1 failed")
    finally:
        assert stop(proc) == 0
    info = jobctl.get_job(bad.id)
    assert info.attempts == 1 and len(info.errors) == 1
    error = info.errors[0]
    assert error.error_class == "jobctl.errors.UnreadableArguments" and error.traceback is None
    problem = "not valid JSON (Expecting value: line 1 column 1 (char 0))" if backend == "sqlite" \
        else 'not {"args": [...], "kwargs": {...}}'
    assert error.message == f"job {bad.id}: its stored arguments are {problem}; it will not be run"


def test_a_row_whose_arguments_are_long_and_unreadable_shows_their_start(sqlite_url: str) -> None:
    jobctl.configure(database_url=sqlite_url)
    try:
        handle = Echo.perform_later(1)
        set_column(sqlite_url, handle.id, "arguments", "{" + "x" * 5000)
        assert jobctl.get_job(handle.id).arguments == {"unreadable": "{" + "x" * 199 + "…"}
    finally:
        jobctl.configure(database_url=None)


# -- 5. class paths in rows --------------------------------------------------------------------

SIDE_EFFECT_MODULE = """\
import pathlib
pathlib.Path("imported-by-a-row").write_text("module code ran")
"""
LAZY_MODULE = """\
import pathlib

import jobctl


class LazyJob(jobctl.Job):
    def perform(self) -> None:
        pathlib.Path("lazy-job-ran").write_text("ok")
"""


@pytest.mark.slow
@pytest.mark.usefixtures("configured")
def test_a_row_never_makes_a_worker_import_code_outside_the_application(database_url: str,
                                                                       tmp_path: Path) -> None:
    url = database_url
    (tmp_path / "side_effect_module.py").write_text(SIDE_EFFECT_MODULE)
    (tmp_path / "lazy_app_jobs.py").write_text(LAZY_MODULE)
    # The user's own command line may import what it names: `jobctl enqueue` still works.
    enqueued = cli("enqueue", "lazy_app_jobs:LazyJob", url=url, cwd=tmp_path)
    assert enqueued.returncode == 0, enqueued
    lazy = int(enqueued.stderr.split()[2])
    stdlib = "is part of Python or an installed package, not the application's code"
    hostile = {"this:X": f"not imported: this {stdlib}",
               "antigravity:Y": f"not imported: antigravity {stdlib}",
               "side_effect_module:Job": f"not imported: side_effect_module ({tmp_path / 'side_effect_module.py'}) "
                                         "defines no class Job",
               "os:system": None,
               "nowhere.at_all:Job": "cannot be imported: no module named 'nowhere'"}
    ids = {}
    for path in hostile:
        handle = Echo.perform_later()
        set_column(url, handle.id, "class", path)
        ids[path] = handle.id
    log = tmp_path / "log"
    proc = start(url, write_config(tmp_path / "queue.yml", threads=2, processes=1), log=log)
    try:
        wait_for(lambda: states(url) == {"failed": len(hostile), "finished": 1}, timeout=30,
                 what="every hostile row failed and the lazy job finished")
    finally:
        assert stop(proc) == 0
    for path, reason in hostile.items():
        [error] = jobctl.get_job(ids[path]).errors
        assert error.error_class == "jobctl.errors.JobClassError" and error.traceback is None
        if reason is None:
            assert error.message == f"{path!r} is not a subclass of jobctl.Job; it will not be run"
        else:
            assert error.message.startswith(f"job class {path!r} {reason}"), error.message
    assert not (tmp_path / "imported-by-a-row").exists()
    assert (tmp_path / "lazy-job-ran").read_text() == "ok"  # the application's own module, imported lazily
    assert jobctl.get_job(lazy).state == "finished"
    text = log.read_text()
    assert "Beautiful is better than ugly" not in text and "Traceback" not in text, text


def test_class_paths_resolve_under_imports_and_in_loaded_modules(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from jobctl.errors import JobClassError
    from jobctl.job import resolve_job_class

    package = tmp_path / "fault_pkg"
    (package / "deep").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "deep" / "__init__.py").write_text("")
    (package / "deep" / "jobs.py").write_text("from tests.jobs_for_tests import Echo as Reexported\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    # Re-exported, not defined there: refused from a row, unless the package is in imports:
    with pytest.raises(JobClassError, match="defines no class Reexported"):
        resolve_job_class("fault_pkg.deep.jobs:Reexported")
    assert "fault_pkg.deep.jobs" not in sys.modules
    assert resolve_job_class("fault_pkg.deep.jobs:Reexported", imports=("fault_pkg",)) is Echo
    assert resolve_job_class("tests.jobs_for_tests.Echo") is Echo  # loaded already: the dotted form too
    with pytest.raises(JobClassError, match="jobctl's own modules are used only as loaded"):
        resolve_job_class("jobctl.commands.nothing_here:Job")
    with pytest.raises(JobClassError, match="is not a class path"):
        resolve_job_class("../etc:passwd")


def test_executor_threads_resolving_new_modules_at_once_all_get_their_class(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # A new worker's threads all resolve classes at once. (The source check once used ast.parse, which
    # on CPython 3.11 can raise SystemError when threads parse at once, gh-106905: the runtime tests
    # caught it; this test states the contract but does not reproduce that race reliably.)
    import threading

    from jobctl.job import resolve_job_class

    names = [f"fault_threads_{i}" for i in range(8)]
    for name in names:
        (tmp_path / f"{name}.py").write_text(LAZY_MODULE + "\n" + "\n".join(f"X{j} = {j}" for j in range(2000)))
    monkeypatch.syspath_prepend(str(tmp_path))
    barrier = threading.Barrier(len(names))
    found: dict[str, object] = {}

    def resolve(name: str) -> None:
        barrier.wait()
        try:
            found[name] = resolve_job_class(f"{name}:LazyJob").__module__
        except BaseException as exc:
            found[name] = exc

    threads = [threading.Thread(target=resolve, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert found == {n: n for n in names}


# -- 6. modes of the files jobctl creates ------------------------------------------------------


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_a_new_sqlite_file_and_its_wal_and_shm_are_private(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "new.sqlite3"
    old = os.umask(umask)
    try:
        store = open_store(urls.parse(f"sqlite:///{path}"))
        try:
            store.ensure_schema()  # creates the file and writes its schema: -wal and -shm exist while open
            modes = {p.name: file_mode(p) for p in tmp_path.iterdir()}
        finally:
            store.close()
    finally:
        os.umask(old)
    assert modes == {"new.sqlite3": 0o600, "new.sqlite3-wal": 0o600, "new.sqlite3-shm": 0o600}


def test_an_existing_sqlite_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    sqlite3.connect(path).close()
    os.chmod(path, 0o640)
    store = open_store(urls.parse(f"sqlite:///{path}"))
    try:
        store.ensure_schema()
    finally:
        store.close()
    assert file_mode(path) == 0o640
