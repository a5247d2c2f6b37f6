"""What both backends' stores do alike once their rows are records (no SQL, no driver)."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from jobctl.errors import SchemaOutdated
from jobctl.records import ErrorInfo, JobInfo, Progress
from jobctl.urls import DatabaseURL

DELETE_BATCH = 5000
"""Jobs deleted per statement by `delete_jobs`."""
HEAD = (-(2**31), 0)
"""Below every real (priority, id): the claim's keyset hint that means "from the head of the queue"."""


def with_details(jobs: Sequence[JobInfo], errors: Iterable[tuple[int, ErrorInfo]],
                 progress: Iterable[tuple[int, Progress]], results: Iterable[tuple[int, Any]] = ()) -> list[JobInfo]:
    """Jobs read without their errors, progress and results, completed with them (errors oldest first)."""
    by_job: dict[int, list[ErrorInfo]] = defaultdict(list)
    for job_id, error in errors:
        by_job[job_id].append(error)
    last = dict(progress)
    returned = dict(results)
    return [dataclasses.replace(j, errors=tuple(by_job.get(j.id, ())), progress=last.get(j.id),
                                result=returned.get(j.id)) for j in jobs]


def finished_ids(jobs: Iterable[JobInfo]) -> list[int]:
    """The ids of the finished ones: only they can have a result."""
    return [j.id for j in jobs if j.state == "finished"]


def batches(ids: Sequence[int], size: int = DELETE_BATCH) -> Iterable[list[int]]:
    """`ids` in lists of at most `size`."""
    for start in range(0, len(ids), size):
        yield list(ids[start:start + size])


def schema_outdated(url: DatabaseURL, version: int, latest: int) -> SchemaOutdated:
    """The one line every verb and the library give for a database without this jobctl's schema."""
    found = "has no jobctl schema" if version == 0 else f"has jobctl schema {version}"
    return SchemaOutdated(f"{url.redacted} {found}; this jobctl needs schema {latest}: run `jobctl db migrate`")
