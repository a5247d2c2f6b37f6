"""Prometheus metrics: the endpoint of a real `jobctl start`, and `jobctl metrics`, on both backends."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import jobctl
from tests import observe_jobs as oj
from tests.runtime_helpers import cli, query, start, stop, wait_for, write_config

Key = tuple[str, str, str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for f in text_string_to_metric_families(text)
            for s in f.samples if s.name == name}


def runs_counted(text: str) -> Counter[Key]:
    return Counter({(dict(k)["queue"], dict(k)["class"], dict(k)["outcome"]): int(v)
                    for k, v in samples(text, "jobctl_runs_total").items() if v})


def runs_in_database(url: str) -> Counter[Key]:
    """What the database says happened to every run: finished and failed jobs, crashes, and retried runs
    (each run that raised left an error row: those not the final failure nor a crash were retried)."""
    counted: Counter[Key] = Counter()
    for queue, cls, state, n, crashes, errors in query(url, """
            SELECT j.queue, j.class, j.state, count(*), sum(j.crashes),
                   sum((SELECT count(*) FROM jobctl_errors e WHERE e.job_id = j.id))
            FROM jobctl_jobs j GROUP BY j.queue, j.class, j.state"""):
        if state in ("finished", "failed"):
            counted[(queue, cls, state)] += int(n)
        counted[(queue, cls, "crashed")] += int(crashes)
        counted[(queue, cls, "retried")] += int(errors) - int(crashes) - (int(n) if state == "failed" else 0)
    return +counted


@pytest.mark.slow
def test_the_endpoint_counts_every_run_as_the_database_does(configured: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    url = configured
    monkeypatch.setenv("OBSERVE_LOG", str(tmp_path / "observe.log"))  # what the error reporter hears
    jobctl.perform_all_later([oj.Ok(i) for i in range(300)] + [oj.Boom(i) for i in range(7)]
                             + [oj.Flaky(i) for i in range(11)])
    crashy = oj.Crashy.perform_later(1)
    port = free_port()
    # Crashy kills a worker of its own: a worker killed with other runs in flight would take with it the
    # counts of a batch the database has just recorded (counted after the commit, never before).
    config = write_config(tmp_path / "queue.yml", processes=2, threads=3, queues="default,risky",
                          extra="  - queues: crashy\n    threads: 1\n    processes: 1\n"
                                "imports: [tests.observe_jobs]\nmetrics_interval: 60\n")
    proc = start(url, config, "--metrics-port", str(port), log=tmp_path / "supervisor.log")
    try:
        wait_for(lambda: query(url, "SELECT count(*) FROM jobctl_jobs WHERE state NOT IN ('finished', 'failed')")
                 == [(0,)] and crashy.state == "finished", timeout=60, what="every job to end")
        expected = runs_in_database(url)
        assert expected[("crashy", "tests.observe_jobs:Crashy", "crashed")] >= 1
        assert expected[("risky", "tests.observe_jobs:Flaky", "retried")] >= 1  # (a crash may take a first run)

        seen: list[Counter[Key]] = []

        def matching() -> str | None:
            text = scrape(port)
            seen[:] = [runs_counted(text)]
            return text if seen[0] == expected else None

        # The workers write their tallies when they go idle: poll until the endpoint has them all.
        try:
            text = wait_for(matching, timeout=30, what="the endpoint's counters to match the database")
        except AssertionError:
            assert seen[0] == expected  # shows the difference
            raise
        durations = samples(text, "jobctl_run_duration_seconds_count")
        runs = sum(n for (_q, _c, outcome), n in expected.items() if outcome != "crashed")
        assert sum(durations.values()) == runs  # one observation per run that returned or raised
        assert samples(text, "jobctl_processes")[(("hostname", socket.gethostname()), ("kind", "worker"))] == 3
        assert samples(text, "jobctl_database_up") == {(): 1.0}
        # The database is read once per metrics_interval, however often it is scraped.
        assert samples(scrape(port), "jobctl_heartbeat_age_seconds") == samples(text, "jobctl_heartbeat_age_seconds")
    finally:
        assert stop(proc) == 0
    # The supervisor reported the crashed run, as a WorkerCrashed, with its job.
    reports = [line for line in (tmp_path / "observe.log").read_text().splitlines() if line.startswith("report ")]
    assert [line.split(" | ")[1] for line in reports if " WorkerCrashed " in line] == [
        f"job {crashy.id} tests.observe_jobs:Crashy crashy 1 retry"]
    assert next(line for line in reports if " WorkerCrashed " in line).startswith(
        f"report {proc.pid} WorkerCrashed job {crashy.id} was running when its worker process died: SIGKILL")


@pytest.mark.slow
def test_jobctl_metrics_prints_the_database_derived_ones(configured: str, tmp_path: Path) -> None:
    url = configured
    for i in range(4):
        oj.Ok.set(queue="backlog").perform_later(i)
    oj.Ok.set(queue="later", wait=3600).perform_later(0)
    done = cli("metrics", url=url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    depth = samples(done.stdout, "jobctl_queue_depth")
    assert depth[(("queue", "backlog"),)] == 4 and depth[(("queue", "later"),)] == 0
    assert samples(done.stdout, "jobctl_queue_jobs")[(("queue", "later"), ("state", "scheduled"))] == 1
    assert samples(done.stdout, "jobctl_queue_latency_seconds")[(("queue", "backlog"),)] >= 0
    assert "# TYPE jobctl_queue_latency_seconds gauge" in done.stdout
    as_json = json.loads(cli("metrics", "--json", url=url, cwd=tmp_path).stdout)
    assert {"name": "jobctl_queue_depth", "labels": {"queue": "backlog"}, "value": 4} in as_json


@pytest.mark.parametrize("value, message", [
    ("0", "Invalid value for '--metrics-port'"),
    ("65536", "Invalid value for '--metrics-port'"),
    ("http", "Invalid value for '--metrics-port'"),
])
def test_a_bad_metrics_port_is_one_line_and_exit_2(value: str, message: str, tmp_path: Path) -> None:
    done = cli("start", "--metrics-port", value, url=f"sqlite:///{tmp_path / 'db.sqlite3'}", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(f"jobctl: {message}") and done.stderr.count("\n") == 1, done.stderr


def test_a_metrics_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = cli("start", "--metrics-port", str(port), url=f"sqlite:///{tmp_path / 'db.sqlite3'}", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == f"jobctl: --metrics-port {port}: cannot listen on 127.0.0.1:{port} (Address already in use)\n"


@pytest.mark.parametrize("text, message", [
    ("metrics_port: 0\n", "q.yml: metrics_port: expected a TCP port from 1 to 65535, or null, got 0"),
    ("metrics_port: '9394'\n", "q.yml: metrics_port: expected a TCP port from 1 to 65535, or null, got '9394'"),
    ("metrics_host: ''\n", "q.yml: metrics_host: expected a host name or address to listen on, like 127.0.0.1 "
                           "or 0.0.0.0, got ''"),
    ("metrics_interval: 0\n", "q.yml: metrics_interval: expected a positive duration"),
    ("otel: yes please\n", "q.yml: otel: expected true or false, got 'yes please'"),
])
def test_metrics_and_otel_settings_are_checked(text: str, message: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from jobctl.config import load_queue_config
    from jobctl.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "q.yml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_queue_config("q.yml")
    assert str(caught.value).startswith(message)


def test_metrics_settings_have_defaults_and_load(tmp_path: Path) -> None:
    from jobctl.config import QueueConfig, load_queue_config

    assert (QueueConfig().metrics_port, QueueConfig().metrics_host, QueueConfig().otel) == (None, "127.0.0.1", False)
    (tmp_path / "q.yml").write_text("metrics_port: 9394\nmetrics_host: 0.0.0.0\nmetrics_interval: 15s\notel: true\n")
    config = load_queue_config(tmp_path / "q.yml")
    assert (config.metrics_port, config.metrics_host, config.metrics_interval, config.otel) == (
        9394, "0.0.0.0", 15.0, True)
