"""OpenTelemetry spans for enqueues and runs (optional: `opentelemetry-api` installed and tracing on).

On when `jobctl.configure(otel=True)`, else JOBCTL_OTEL=1, else `otel: true` in the queue config.
An enqueue is a PRODUCER span `send QUEUE`; it stores its W3C trace context in the job's arguments
envelope (`{"args": [...], "kwargs": {...}, "trace": {"traceparent": ...}}`: no column, no migration,
and every retry of the job carries it too). A run is a CONSUMER span `process QUEUE`, a child of
the enqueue's span and linked to it (the messaging conventions require the link, allow the
parent), current while `perform` runs, so the job's own spans nest under it. Attributes follow
OpenTelemetry's messaging semantic conventions (`messaging.system`, `messaging.operation.name`,
`messaging.operation.type`, `messaging.destination.name`, `messaging.message.id`,
`messaging.batch.message_count`), plus `jobctl.job.class` and `jobctl.job.attempt`.

jobctl brings no SDK and no exporter: the application sets its tracer provider (in a module named
in `imports:` for the runtime). Nothing here imports OpenTelemetry until tracing is on, so
`import jobctl` stays light; with tracing off an enqueue pays one flag check.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from jobctl.errors import ConfigError

SYSTEM = "jobctl"
"""`messaging.system`."""
KEY = "trace"
"""The arguments envelope's key for the enqueue's trace context."""
LOGGER = logging.getLogger("jobctl")

_configured: bool | None = None
_from_config: bool | None = None
_active: bool | None = None
_tracer: Any = None
_config_source: Callable[[], bool] | None = None


def configure(on: bool | None) -> None:
    """`jobctl.configure(otel=...)`: True or False wins over JOBCTL_OTEL and the queue config; None drops it."""
    global _configured, _active
    _configured, _active = on, None


def use_config(on: bool) -> None:
    """The queue config's `otel:` (`jobctl start`, before it forks), below configure() and JOBCTL_OTEL."""
    global _from_config, _active
    _from_config, _active = on, None


def set_config_source(source: Callable[[], bool]) -> None:
    """Where the queue config's `otel:` is read when nothing else decides (`jobctl.database` sets it: this
    module imports no other part of jobctl, so the library imports it without a circle)."""
    global _config_source
    _config_source = source


def env_setting() -> bool | None:
    """JOBCTL_OTEL as a flag (1/true/yes/on, 0/false/no/off), or None when unset."""
    value = os.environ.get("JOBCTL_OTEL", "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return None


def active() -> bool:
    """Whether enqueues and runs make spans (decided once, again after `configure`)."""
    global _active, _tracer
    if _active is not None:
        return _active
    on = _configured if _configured is not None else env_setting()
    if on is None:
        on = _from_config if _from_config is not None else _queue_config_says()
    if on:
        try:
            from opentelemetry import trace

            _tracer = trace.get_tracer("jobctl")
        except ImportError:
            LOGGER.warning("otel is on but opentelemetry-api is not installed: no spans "
                           "(pip install 'jobctl-queue[otel]')", extra={"event": "otel_unavailable"})
            on = False
    _active = bool(on)
    return _active


def _queue_config_says() -> bool:
    if _config_source is None:
        return False
    try:
        return _config_source()
    except ConfigError:
        return False  # the queue config's errors are the runtime's to report, not an enqueue's


# -- enqueues ----------------------------------------------------------------------------------


class Sending:
    """An enqueue's span: stamps arguments with its context, then learns the job's id."""

    def __init__(self, span: Any, carrier: dict[str, str]) -> None:
        self.span = span
        self.stamp_text = "," + json.dumps(KEY) + ":" + json.dumps(carrier, separators=(",", ":")) + "}"

    def stamp(self, arguments: str) -> str:
        """Stored arguments with this trace context added to their envelope."""
        return arguments[:-1] + self.stamp_text if arguments.endswith("}") else arguments

    def sent(self, job_id: int | None = None) -> None:
        """The job's id, once inserted (a single enqueue)."""
        if job_id is not None:
            self.span.set_attribute("messaging.message.id", str(job_id))


@contextlib.contextmanager
def sending(queue: str | None, class_path: str | None, count: int = 1) -> Iterator[Sending | None]:
    """A PRODUCER span around an enqueue of `count` jobs (`queue`, `class_path` None when they differ);
    yields None when tracing is off."""
    if not active():
        yield None
        return
    from opentelemetry import propagate, trace

    attributes: dict[str, Any] = {"messaging.system": SYSTEM, "messaging.operation.name": "send",
                                  "messaging.operation.type": "send"}
    if queue is not None:
        attributes["messaging.destination.name"] = queue
    if class_path is not None:
        attributes["jobctl.job.class"] = class_path
    if count != 1:
        attributes["messaging.batch.message_count"] = count
    with _tracer.start_as_current_span(f"send {queue}" if queue is not None else "send",
                                       kind=trace.SpanKind.PRODUCER, attributes=attributes) as span:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        yield Sending(span, carrier)


# -- runs --------------------------------------------------------------------------------------


def carried(arguments: str | Mapping[str, Any]) -> dict[str, str] | None:
    """The trace context an enqueue stored in a job's arguments, if any."""
    if isinstance(arguments, str):
        if '"trace"' not in arguments:
            return None
        try:
            data = json.loads(arguments)
        except ValueError:
            return None
    else:
        data = arguments
    found = data.get(KEY) if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else None


@contextlib.contextmanager
def processing(job_id: int, queue: str, class_path: str, attempt: int,
               arguments: str | Mapping[str, Any]) -> Iterator[Any]:
    """A CONSUMER span around one run, child of (and linked to) its enqueue's span when it has one;
    current while the job runs. Yields the span (None when tracing is off)."""
    if not active():
        yield None
        return
    from opentelemetry import propagate, trace

    carrier = carried(arguments)
    parent = propagate.extract(carrier) if carrier else None
    links = []
    if parent is not None:
        sent = trace.get_current_span(parent).get_span_context()
        if sent.is_valid:
            links.append(trace.Link(sent, {"messaging.operation.type": "send"}))
    attributes = {"messaging.system": SYSTEM, "messaging.operation.name": "process",
                  "messaging.operation.type": "process", "messaging.destination.name": queue,
                  "messaging.message.id": str(job_id), "jobctl.job.class": class_path, "jobctl.job.attempt": attempt}
    with _tracer.start_as_current_span(f"process {queue}", context=parent, kind=trace.SpanKind.CONSUMER,
                                       links=links, attributes=attributes, record_exception=False,
                                       set_status_on_exception=False) as span:
        yield span


def ended(span: Any, state: str, exception: BaseException | None) -> None:
    """Mark a run's span with what became of the run: an error status and the exception unless it finished."""
    if span is None:
        return
    span.set_attribute("jobctl.job.outcome", state)
    if state != "finished":
        from opentelemetry.trace import Status, StatusCode

        if exception is not None:
            span.record_exception(exception)
        span.set_status(Status(StatusCode.ERROR, f"{type(exception).__name__}: {exception}" if exception else state))
