"""Jobs for the tracing tests, and the runtime's OpenTelemetry SDK (named in `imports:`).

Imported by `jobctl start` before it forks: every process gets a tracer provider whose span processor
exports at once (SimpleSpanProcessor: no thread in the supervisor) to $OTEL_SPANS, one JSON line per
span, so the test reads the spans of the forked workers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import jobctl


def span_record(span: ReadableSpan) -> dict[str, object]:
    """One span as a JSON-able dict: ids in hex, its parent, links, attributes, status, events."""
    ctx = span.get_span_context()
    assert ctx is not None
    return {
        "name": span.name, "kind": span.kind.name, "pid": os.getpid(),
        "trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}",
        "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "links": [f"{link.context.trace_id:032x}/{link.context.span_id:016x}" for link in span.links],
        "attributes": dict(span.attributes or {}), "status": span.status.status_code.name,
        "events": [e.name for e in span.events],
    }


class FileExporter(SpanExporter):
    """Appends each span to $OTEL_SPANS (O_APPEND: processes never interleave a line)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        fd = os.open(os.environ["OTEL_SPANS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            for span in spans:
                os.write(fd, (json.dumps(span_record(span)) + "\n").encode())
        finally:
            os.close(fd)
        return SpanExportResult.SUCCESS


if os.environ.get("OTEL_SPANS"):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(FileExporter()))
    trace.set_tracer_provider(provider)

tracer = trace.get_tracer("tests.otel_jobs")


class Traced(jobctl.Job):
    """Makes a span of its own inside its run."""

    def perform(self, n: int = 0) -> int:
        with tracer.start_as_current_span("inside the job"):
            return n


class Broken(jobctl.Job):
    """Raises."""

    def perform(self) -> None:
        raise LookupError("no such thing")
