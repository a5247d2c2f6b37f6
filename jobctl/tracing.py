"""OpenTelemetry spans for enqueues and runs (optional: `opentelemetry-api` installed and `otel: true`).

Nothing here imports OpenTelemetry until tracing is on: `import jobctl` stays light.
"""

from __future__ import annotations

import os

_configured: bool | None = None
_active: bool | None = None


def configure(on: bool | None) -> None:
    """`jobctl.configure(otel=...)`: True or False wins over JOBCTL_OTEL and the queue config; None drops it."""
    global _configured, _active
    _configured, _active = on, None


def env_setting() -> bool | None:
    """JOBCTL_OTEL as a flag (1/true/yes, 0/false/no), or None when unset."""
    value = os.environ.get("JOBCTL_OTEL", "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return None
