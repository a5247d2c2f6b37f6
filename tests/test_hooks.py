"""Lifecycle hooks and the error reporter, in a real `jobctl start` on both backends."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import jobctl
from jobctl import hooks
from tests import observe_jobs as oj
from tests.runtime_helpers import start, stop, wait_for, write_config


def _log(path: Path) -> list[list[str]]:
    return [line.split(" ") for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_hooks_run_in_each_process_in_order_and_the_reporter_hears_every_failed_run(
        configured: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = configured
    log = tmp_path / "observe.log"
    monkeypatch.setenv("OBSERVE_LOG", str(log))
    ok, boom, flaky = oj.Ok.perform_later(1), oj.Boom.perform_later(2), oj.Flaky.perform_later(3)
    config = write_config(tmp_path / "queue.yml", processes=2, threads=2, extra="imports: [tests.observe_jobs]\n")
    proc = start(url, config, log=tmp_path / "supervisor.log")
    try:
        wait_for(lambda: (ok.state, boom.state, flaky.state) == ("finished", "failed", "finished"), timeout=30,
                 what="the three jobs to end")
        starts = wait_for(lambda: [e for e in _log(log) if e[0] == "start"] if len(
            [e for e in _log(log) if e[0] == "start"]) == 4 else None, what="four start hooks")
    finally:
        assert stop(proc) == 0  # a hook that raised stopped nothing
    events = _log(log)
    sup = str(proc.pid)
    # The supervisor's start hook ran first, in the supervisor, before it forked anything.
    assert starts[0][:3] == ["start", "supervisor", sup] and int(starts[0][4]) > 0
    children = {e[2]: e[1] for e in starts[1:]}
    assert sorted(children.values()) == ["dispatcher", "worker", "worker"]
    for e in starts[1:]:
        assert e[3] == sup and e[2] != sup  # forked by the supervisor: its parent is the supervisor
        assert int(e[4]) > 0  # registered before its hooks ran
    # Per process, hooks in the order registered: the all-kinds one, (a raising one,) then the second.
    for pid, kind in children.items():
        mine = [e[0] for e in events if e[0] in ("start", "second", "stop") and e[2] == pid]
        assert mine == ["start", "second", "stop"], (kind, mine)
    # Every child stopped before the supervisor's stop hook, which came last.
    assert events[-1][:3] == ["stop", "supervisor", sup]
    assert {e[2] for e in events if e[0] == "stop"} == {sup, *children}
    reports = [line for line in log.read_text().splitlines() if line.startswith("report")]
    dispatcher = next(pid for pid, kind in children.items() if kind == "dispatcher")
    assert f"report {dispatcher} RuntimeError broken hook in dispatcher 1 | jobctl" in reports
    workers = {pid for pid, kind in children.items() if kind == "worker"}
    runs = sorted(r.split(" | ")[1] for r in reports if r.split(" ")[1] in workers)
    assert runs == sorted([f"job {boom.id} tests.observe_jobs:Boom risky 1 failed",
                           f"job {flaky.id} tests.observe_jobs:Flaky risky 1 retry"])
    assert any(f"ValueError boom 2 | job {boom.id}" in r for r in reports)
    assert "on_start hook" in (tmp_path / "supervisor.log").read_text()  # logged too


def test_a_hook_that_raises_is_logged_and_reported_and_the_others_run(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []
    reported: list[tuple[str, object]] = []
    saved = {k: list(v) for k, v in hooks._hooks.items()}
    try:
        hooks._hooks["start"].clear()
        jobctl.on_start(lambda p: seen.append(f"all {p.kind}"))

        @jobctl.on_start("scheduler")
        def broken(process: hooks.RuntimeProcess) -> None:
            raise KeyError("nope")

        @jobctl.on_start()
        def last(process: hooks.RuntimeProcess) -> None:
            seen.append(f"last {process.kind}")

        jobctl.configure(error_reporter=lambda exc, job: reported.append((type(exc).__name__, job)))
        hooks.run_hooks("start", hooks.RuntimeProcess("scheduler", "scheduler", os.getpid(), 7))
        hooks.run_hooks("start", hooks.RuntimeProcess("worker", "worker 1.1", os.getpid(), 8))
    finally:
        hooks._hooks.update(saved)
        jobctl.configure(error_reporter=None)
    assert seen == ["all scheduler", "last scheduler", "all worker", "last worker"]
    assert reported == [("KeyError", None)]
    assert "on_start hook" in caplog.text and "broken" in caplog.text


def test_a_reporter_that_raises_is_logged_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    def bad(exc: BaseException, job: object) -> None:
        raise OSError("sentry is down")

    jobctl.configure(error_reporter=bad)
    try:
        hooks.report(ValueError("x"))
    finally:
        jobctl.configure(error_reporter=None)
    assert "the error reporter raised OSError: sentry is down" in caplog.text


def test_hook_kinds_are_checked_and_configure_keeps_the_database_settings(configured: str) -> None:
    with pytest.raises(ValueError, match="expected process kinds"):
        jobctl.on_start("workers")
    with pytest.raises(TypeError, match="callable"):
        jobctl.configure(error_reporter="sentry")  # type: ignore[arg-type]
    jobctl.configure(error_reporter=None)  # only the reporter: the database stays as configured
    assert jobctl.count() == 0


def test_the_readme_sentry_example_reports_the_job_as_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """README's Sentry block, run against a stand-in for sentry_sdk (jobctl does not depend on it)."""
    import re
    import sys
    import types
    from contextlib import contextmanager
    from typing import Any

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    [code] = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "import sentry_sdk" in b]
    calls: list[tuple[str, Any]] = []

    class Scope:
        def set_tag(self, key: str, value: str) -> None:
            calls.append(("tag", (key, value)))

        def set_context(self, key: str, value: dict[str, Any]) -> None:
            calls.append(("context", (key, value)))

    @contextmanager
    def new_scope() -> Any:
        yield Scope()

    stub = types.ModuleType("sentry_sdk")
    stub.new_scope = new_scope  # type: ignore[attr-defined]
    stub.capture_exception = lambda exc: calls.append(("capture", exc))  # type: ignore[attr-defined]
    stub.init = lambda **kw: calls.append(("init", kw))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentry_sdk", stub)
    saved = {k: list(v) for k, v in hooks._hooks.items()}
    try:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_sentry"})
        hooks.run_hooks("start", hooks.RuntimeProcess("worker", "worker 1.1", os.getpid(), 3))
        error = ValueError("boom")
        hooks.report(error, hooks.ReportedJob(5, "app.jobs:Bill", "billing", 2, "retry", '{"args":[1],"kwargs":{}}'))
    finally:
        hooks._hooks.update(saved)
        jobctl.configure(error_reporter=None)
    assert calls[0][0] == "init" and calls[0][1]["server_name"] == "worker 1.1"
    assert ("tag", ("jobctl.queue", "billing")) in calls
    assert ("context", ("job", {"id": 5, "class_path": "app.jobs:Bill", "queue": "billing", "attempt": 2,
                                "outcome": "retry", "arguments": '{"args":[1],"kwargs":{}}'})) in calls
    assert calls[-1] == ("capture", error)
