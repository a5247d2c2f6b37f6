"""OpenTelemetry: a span per enqueue and per run, the run's span a child of (and linked to) the enqueue's,
across processes: the enqueue here, with the SDK's in-memory exporter, the run in a forked worker of a
real `jobctl start`, whose spans tests/otel_jobs.py writes to a file."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import jobctl
from jobctl import tracing
from tests import otel_jobs
from tests.runtime_helpers import start, stop, wait_for, write_config

EXPORTER = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
trace.set_tracer_provider(_provider)  # once per process: OpenTelemetry refuses a second provider
TRACER = trace.get_tracer("tests.test_tracing")


@pytest.fixture
def traced(configured: str) -> Iterator[str]:
    EXPORTER.clear()
    jobctl.configure(otel=True)
    try:
        yield configured
    finally:
        jobctl.configure(otel=None)


def spans_in(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_a_run_span_in_the_worker_is_a_child_of_and_linked_to_its_enqueue_span(
        traced: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = traced
    with TRACER.start_as_current_span("POST /orders"):
        job = otel_jobs.Traced.perform_later(5)
    broken = otel_jobs.Broken.perform_later()
    bulk = jobctl.perform_all_later([otel_jobs.Traced(i) for i in range(3)])
    assert bulk == 3
    enqueued = {s.name: s for s in EXPORTER.get_finished_spans()}
    request, send = enqueued["POST /orders"], next(s for s in EXPORTER.get_finished_spans()
                                                   if s.attributes and s.attributes.get("messaging.message.id")
                                                   == str(job.id))
    assert send.kind == trace.SpanKind.PRODUCER and send.name == "send default"
    assert send.parent is not None and send.parent.span_id == request.context.span_id
    assert dict(send.attributes or {}) == {
        "messaging.system": "jobctl", "messaging.operation.name": "send", "messaging.operation.type": "send",
        "messaging.destination.name": "default", "jobctl.job.class": "tests.otel_jobs:Traced",
        "messaging.message.id": str(job.id)}
    [batch] = [s for s in EXPORTER.get_finished_spans() if (s.attributes or {}).get("messaging.batch.message_count")]
    assert batch.attributes is not None and batch.attributes["messaging.batch.message_count"] == 3

    spans = tmp_path / "spans.jsonl"
    monkeypatch.setenv("OTEL_SPANS", str(spans))
    config = write_config(tmp_path / "queue.yml", processes=1, extra="imports: [tests.otel_jobs]\notel: true\n")
    proc = start(url, config, log=tmp_path / "supervisor.log")
    try:
        wait_for(lambda: job.state == "finished" and broken.state == "failed" and jobctl.count("finished") == 4,
                 timeout=30, what="the jobs to run")
        runs = wait_for(lambda: [s for s in spans_in(spans) if s["kind"] == "CONSUMER"]
                        if len([s for s in spans_in(spans) if s["kind"] == "CONSUMER"]) == 5 else None,
                        what="five run spans")
    finally:
        assert stop(proc) == 0
    run = next(s for s in runs if s["attributes"]["messaging.message.id"] == str(job.id))  # type: ignore[index]
    sent = f"{send.context.trace_id:032x}/{send.context.span_id:016x}"
    assert run["pid"] != proc.pid  # in a forked worker, not the supervisor
    assert run["trace_id"] == f"{request.context.trace_id:032x}"  # one trace: request, enqueue, run
    assert run["parent_id"] == f"{send.context.span_id:016x}" and run["links"] == [sent]
    assert run["name"] == "process default" and run["status"] == "UNSET"
    assert run["attributes"] == {"messaging.system": "jobctl", "messaging.operation.name": "process",
                                 "messaging.operation.type": "process", "messaging.destination.name": "default",
                                 "messaging.message.id": str(job.id), "jobctl.job.class": "tests.otel_jobs:Traced",
                                 "jobctl.job.attempt": 1, "jobctl.job.outcome": "finished"}
    inner = next(s for s in spans_in(spans) if s["name"] == "inside the job" and s["trace_id"] == run["trace_id"])
    assert inner["parent_id"] == run["span_id"]  # the job's own spans nest under its run
    failed = next(s for s in runs if s["attributes"]["messaging.message.id"] == str(broken.id))  # type: ignore[index]
    assert failed["status"] == "ERROR" and failed["events"] == ["exception"]
    bulk_runs = [s for s in runs if s["links"] == [f"{batch.context.trace_id:032x}/{batch.context.span_id:016x}"]]
    assert len(bulk_runs) == 3  # every job of a bulk enqueue links to its one span


def test_tracing_off_stores_no_context_and_makes_no_span(configured: str) -> None:
    EXPORTER.clear()
    jobctl.configure(otel=False)
    try:
        job = otel_jobs.Traced.perform_later(1)
    finally:
        jobctl.configure(otel=None)
    assert EXPORTER.get_finished_spans() == ()
    assert "trace" not in json.dumps(jobctl.get_job(job.id).arguments)


def test_stamped_arguments_still_load_and_carry_the_context() -> None:
    from jobctl import arguments

    stamped = '{"args":[1],"kwargs":{"a":"trace"},"trace":{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-' \
              'b7ad6b7169203331-01"}}'
    assert arguments.load_arguments(stamped) == ([1], {"a": "trace"})
    assert tracing.carried(stamped) == {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    assert tracing.carried('{"args":[],"kwargs":{}}') is None


def test_import_jobctl_loads_no_opentelemetry_even_with_jobctl_otel_set() -> None:
    code = "import sys, jobctl; print([m for m in sys.modules if m.startswith('opentelemetry')])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"JOBCTL_OTEL": "1", "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]"
