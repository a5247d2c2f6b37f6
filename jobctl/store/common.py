"""What both backends' stores do alike once their rows are records (no SQL, no driver)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from jobctl.errors import SchemaOutdated
from jobctl.records import BatchCallback, BatchInfo, Dependency, ErrorInfo, Inserted, JobInfo, NewJob, Progress
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


def with_dependencies(jobs: Sequence[JobInfo], dependencies: Iterable[tuple[int, Dependency]],
                      dependents: Iterable[tuple[int, int]]) -> list[JobInfo]:
    """Jobs completed with what they wait for and what waits for them (both as the store read them)."""
    waits: dict[int, list[Dependency]] = defaultdict(list)
    for job_id, dependency in dependencies:
        waits[job_id].append(dependency)
    waited: dict[int, list[int]] = defaultdict(list)
    for on_job, job_id in dependents:
        waited[on_job].append(job_id)
    if not waits and not waited:
        return list(jobs)
    return [dataclasses.replace(j, dependencies=tuple(waits.get(j.id, ())), dependents=tuple(waited.get(j.id, ())))
            for j in jobs]


CALLBACK_EVENTS = ("success", "failure", "finish")
"""A batch's callback events, in the order its row stores them (on_success, on_failure, on_finish)."""


def batch_info(r: Sequence[Any], created_at: dt.datetime, finished_at: dt.datetime | None,
               metadata: Any, states: dict[str, int] | None = None) -> BatchInfo:
    """A row of the batch queries (`batches_by_ids`, `list_batches`), times and metadata already decoded."""
    callbacks = []
    for event, stored, job_id in zip(CALLBACK_EVENTS, r[9:12], r[12:15], strict=True):
        if stored is not None:
            cb = json.loads(stored)
            callbacks.append(BatchCallback(event, cb["class"], cb["queue"], int(cb["priority"]),
                                           json.dumps(cb["arguments"]), job_id))
    return BatchInfo(id=r[0], description=r[1], metadata=metadata, total=int(r[3]), finished=int(r[4]),
                     failed=int(r[5]), sealed=bool(r[6]), created_at=created_at, finished_at=finished_at,
                     callbacks=tuple(callbacks), parent_job_id=r[15], states=dict(states or {}))


def callback_json(callbacks: Sequence[BatchCallback]) -> dict[str, str | None]:
    """The seal statement's `on_success`, `on_failure` and `on_finish` parameters: each a JSON object or None."""
    stored: dict[str, str | None] = {f"on_{event}": None for event in CALLBACK_EVENTS}
    for cb in callbacks:
        stored[f"on_{cb.event}"] = json.dumps({"class": cb.class_path, "queue": cb.queue, "priority": cb.priority,
                                               "arguments": json.loads(cb.arguments)})
    return stored


def resolve_references(job: NewJob, inserted: Sequence[Inserted]) -> NewJob:
    """A workflow's job with its references to earlier jobs of the same call (`-1 - index`) made ids."""
    if not any(ref < 0 for ref in job.after_jobs):
        return job
    ids = tuple(inserted[-1 - ref].id if ref < 0 else ref for ref in job.after_jobs)
    return dataclasses.replace(job, after_jobs=tuple(dict.fromkeys(ids)))


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
