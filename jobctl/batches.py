"""Batches and workflows: `jobctl.batch()` with its callbacks, `chain` and `group` of dependent jobs.

A batch is a row the database counts its members in (see the store's migration 0009): every job
enqueued inside `with jobctl.batch(...)`, and every job those jobs enqueue while they run, is a member.
Each callback is enqueued once, by the statement that ends the member calling for it, so no crash,
retry or operator verb can lose or double one. A workflow (`chain`, `group`) is jobs that wait for
others (`Job.set(after=...)`), enqueued in one transaction.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

from jobctl import arguments, database
from jobctl.errors import JobNotFound, OptionError
from jobctl.job import BatchHandle, ConfiguredJob, Job, JobHandle
from jobctl.records import BATCH_STATES, BatchCallback, BatchInfo, NewJob

Callback = Job | ConfiguredJob | type[Job]
"""What a callback may be given as: a job built with its arguments (`SomeJob.set(queue="mail")(42)` or
`SomeJob(42)`), or a class or `set(...)` to call with the batch alone."""


def _callback_job(value: Callback, event: str) -> Job:
    if isinstance(value, Job):
        return value
    if isinstance(value, ConfiguredJob):
        return value()
    if isinstance(value, type) and issubclass(value, Job):
        return value()
    raise TypeError(f"on_{event}= expects a job (SomeJob.set(queue=...)(args), SomeJob(args) or SomeJob), "
                    f"got {value!r}")


def _check_callback(job: Job, event: str) -> NewJob:
    """The callback's row without its batch argument, checked: it must be one that is enqueued as it is."""
    row = job.to_new_job()
    if row.key is not None or row.delay > 0 or row.run_at is not None or row.timeout is not None \
            or row.limit is not None or row.waits:
        raise OptionError(f"on_{event}= {row.class_path}: a batch callback is enqueued ready as it is; it cannot "
                          "have key=, wait=, wait_until=, timeout=, after= or a concurrency limit")
    return row


class Batch(BatchHandle):
    """A batch being built: the value of `with jobctl.batch(...) as batch:`; `batch.id`, `batch.info()`."""

    def __init__(self, *, on_success: Callback | None = None, on_failure: Callback | None = None,
                 on_finish: Callback | None = None, description: str | None = None,
                 metadata: Any = None) -> None:
        self._callbacks: list[tuple[str, Job]] = []
        for event, value in (("success", on_success), ("failure", on_failure), ("finish", on_finish)):
            if value is not None:
                job = _callback_job(value, event)
                _check_callback(job, event)
                self._callbacks.append((event, job))
        if description is not None and not isinstance(description, str):
            raise TypeError(f"description= expects a string, got {description!r}")
        self.description = description
        """What the batch is, for people (`jobctl batches`, the monitor)."""
        try:
            self._metadata = None if metadata is None else json.dumps(metadata)
        except (TypeError, ValueError) as exc:
            raise OptionError(f"metadata= must be JSON (dicts, lists, strings, numbers): {exc}") from None
        self.metadata = metadata
        """The JSON given as `metadata=`."""
        self.id: int | None = None
        """The batch's id once its `with` block has started."""
        self._conn: Any = None
        self._joined: Any = None

    def __enter__(self) -> Batch:
        if self.id is not None:
            raise RuntimeError(f"batch {self.id} was entered already: open a new jobctl.batch()")
        store = database.get_store()
        self._conn = database.current_connection()
        self.id = store.create_batch(description=self.description, metadata=self._metadata,
                                     parent_job_id=database.running_job(), conn=self._conn)
        self._joined = database.join(self.id)
        return self

    def _stored_callbacks(self) -> list[BatchCallback]:
        found = []
        for event, job in self._callbacks:
            row = _check_callback(job, event)
            stored = arguments.dump_arguments((self, *job._args), job._kwargs)
            found.append(BatchCallback(event, row.class_path, row.queue, row.priority, stored))
        return found

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        database.leave(self._joined)
        assert self.id is not None
        store = database.get_store()
        if exc_type is None:
            store.seal_batch(self.id, self._stored_callbacks(), self._conn)
            return
        # The block raised: the members enqueued so far run (outside using(), they are committed), so the
        # batch is sealed as it is; inside a transaction that failed there is nothing left to seal.
        try:
            store.seal_batch(self.id, self._stored_callbacks(), self._conn)
        except Exception:  # the block's own exception is the one to see (it propagates)
            pass

    def info(self) -> BatchInfo:
        """The batch as stored now (through the caller's connection inside `using`)."""
        if self.id is None:
            raise RuntimeError("the batch's `with` block has not started")
        return get_batch(self.id)

    def __repr__(self) -> str:
        return f"<Batch id={self.id}>"


def batch(*, on_success: Callback | None = None, on_failure: Callback | None = None,
          on_finish: Callback | None = None, description: str | None = None, metadata: Any = None) -> Batch:
    """A batch: every job enqueued inside `with jobctl.batch(...) as batch:` (single or bulk), and every job
    those jobs enqueue while they run, belongs to it.

    Each callback (a configured job: `SomeJob.set(queue="mail")(args)`) is enqueued exactly once, with the
    batch's `BatchInfo` as its first argument: `on_success` when every member finished, `on_failure` at
    the first member that failed or was discarded for good, `on_finish` when no member is left active.
    Retries and crash re-runs do not end a member; `jobctl retry` of a failed one reopens the batch. A batch
    with no members finishes when its block ends.
    """
    return Batch(on_success=on_success, on_failure=on_failure, on_finish=on_finish, description=description,
                 metadata=metadata)


def get_batch(batch_id: int) -> BatchInfo:
    """A frozen `BatchInfo` with its members counted by state; raises `JobNotFound` for an unknown id."""
    found = database.get_store().get_batches([batch_id], database.current_connection(), states=True)
    if not found:
        raise JobNotFound(f"batch {batch_id} does not exist")
    return found[0]


def _load_batch(batch_id: Any) -> BatchInfo | None:
    found = database.get_store().get_batches([int(batch_id)], states=True)
    return found[0] if found else None


# A callback's first argument is its batch by reference: the worker reloads it fresh, counts and all.
arguments.register_locator(Batch, dump=lambda b: b.id, load=_load_batch)
arguments.register_locator(BatchInfo, dump=lambda b: b.id, load=_load_batch)


# -- workflows ------------------------------------------------------------------------------------


class Group:
    """Jobs that run side by side; in a chain, the next step waits for all of them. From `jobctl.group`."""

    def __init__(self, steps: Iterable[Step]) -> None:
        self.steps = [_checked_step(s) for s in steps]

    def perform_later(self) -> list[JobHandle]:
        """Enqueue every job in one transaction; returns their handles in order."""
        return _enqueue_workflow(self)


class Chain:
    """Steps that run one after another, each waiting for the one before. From `jobctl.chain`."""

    def __init__(self, steps: Iterable[Step]) -> None:
        self.steps = [_checked_step(s) for s in steps]

    def perform_later(self) -> list[JobHandle]:
        """Enqueue every job in one transaction; returns their handles in order."""
        return _enqueue_workflow(self)


Step = Job | Group | Chain
"""One step of a workflow."""


def _checked_step(step: Any) -> Step:
    if isinstance(step, Job | Group | Chain):
        return step
    raise TypeError(f"a workflow step is a job (SomeJob(args), SomeJob.set(...)(args)), a group or a chain, "
                    f"got {step!r}")


def chain(*steps: Step) -> Chain:
    """`jobctl.chain(a, b, c).perform_later()`: b waits for a, c for b (a group waits for all its members).
    A step that fails or is discarded discards the steps after it, with the reason (unless a step was
    built with `set(on_dependency_failure="run")`). The whole chain is enqueued in one transaction."""
    return Chain(steps)


def group(steps: Iterable[Step]) -> Group:
    """`jobctl.group([a, b, c])`: jobs that run side by side; in a chain, the next step waits for all."""
    return Group(steps)


def _rows(step: Step, after: Sequence[int], rows: list[NewJob]) -> list[int]:
    """Add the rows of `step`, waiting for `after` (references: -1 - index into `rows`); returns the
    references the next step waits for."""
    if isinstance(step, Job):
        row = step.to_new_job()
        waits = (*after, *row.after_jobs)
        row = dataclasses.replace(row, after_jobs=tuple(dict.fromkeys(waits)))
        rows.append(row)
        return [-len(rows)]
    if isinstance(step, Group):
        ends: list[int] = []
        for member in step.steps:
            ends.extend(_rows(member, after, rows))
        return ends
    current = list(after)
    for member in step.steps:
        current = _rows(member, current, rows)
    return current


def _enqueue_workflow(workflow: Group | Chain) -> list[JobHandle]:
    rows: list[NewJob] = []
    _rows(workflow, [], rows)  # every row built (arguments serialised) before anything is written
    conn = database.current_connection()
    inserted = database.get_store().insert_workflow(rows, conn)
    return [JobHandle(i.id, i.created, conn) for i in inserted]


__all__ = ["BATCH_STATES", "Batch", "BatchInfo", "Chain", "Group", "batch", "chain", "get_batch", "group"]
