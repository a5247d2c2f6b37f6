"""Runtime logging on stderr: one line per job event, as text or JSON; cheap when disabled."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

LOGGER = logging.getLogger("jobctl")
JOB_FIELDS = ("job_id", "class", "queue", "attempt", "duration_ms", "error")


class JsonFormatter(logging.Formatter):
    """`{ts, level, event, job_id, class, queue, attempt, duration_ms, error, message}` per line."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", record.name),
        }
        for key in JOB_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                data[key] = value
        data["message"] = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`2026-01-01T00:00:00Z INFO [pid] message`."""

    def format(self, record: logging.LogRecord) -> str:
        ts = dt.datetime.fromtimestamp(record.created, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return f"{ts} {record.levelname} [{record.process}] {record.getMessage()}"


def setup(level: str = "info", fmt: str = "text") -> None:
    """Send jobctl's logs to stderr at `level` in `fmt` (text or json)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(level.upper())
    LOGGER.propagate = False


def event(level: int, name: str, message: str, **fields: Any) -> None:
    """Log one runtime event with structured fields (skipped cheaply when `level` is disabled)."""
    if LOGGER.isEnabledFor(level):
        extra = {"event": name, **{("class" if k == "class_" else k): v for k, v in fields.items()}}
        LOGGER.log(level, message, extra=extra)

