"""jobctl: database-backed background jobs for Python (PostgreSQL or SQLite, no broker).

Light on purpose: importing jobctl loads no Textual and no typer.
"""

from __future__ import annotations

from jobctl.arguments import register_locator
from jobctl.batches import Batch, Chain, Group, batch, chain, get_batch, group
from jobctl.current import current
from jobctl.database import configure, using
from jobctl.errors import (
    ConfigError,
    DatabaseError,
    JobClassError,
    JobctlError,
    JobDiscarded,
    JobFailed,
    JobNotFound,
    JobTimeout,
    RecordNotFound,
    SchemaOutdated,
    SerializationError,
)
from jobctl.hooks import on_start, on_stop
from jobctl.job import (
    ConcurrencyLimit,
    ConfiguredJob,
    Job,
    JobHandle,
    RetryOn,
    count,
    get_job,
    perform_all_later,
)
from jobctl.later import later
from jobctl.records import BatchInfo, Dependency, ErrorInfo, JobInfo, Progress

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "BatchInfo",
    "Chain",
    "ConcurrencyLimit",
    "ConfigError",
    "ConfiguredJob",
    "DatabaseError",
    "Dependency",
    "ErrorInfo",
    "Group",
    "Job",
    "JobClassError",
    "JobDiscarded",
    "JobFailed",
    "JobHandle",
    "JobInfo",
    "JobNotFound",
    "JobTimeout",
    "JobctlError",
    "Progress",
    "RecordNotFound",
    "RetryOn",
    "SchemaOutdated",
    "SerializationError",
    "__version__",
    "batch",
    "chain",
    "configure",
    "count",
    "current",
    "get_batch",
    "get_job",
    "group",
    "later",
    "on_start",
    "on_stop",
    "perform_all_later",
    "register_locator",
    "using",
]
