"""Batches and chains, runnable: a bulk import that emails when every row is done, and a chain of steps.

    export JOBCTL_DATABASE_URL=sqlite:///examples/demo.sqlite3
    python -m examples.app.workflows import examples/app/rows.csv --outbox /tmp/outbox
    python -m examples.app.workflows chain --outbox /tmp/outbox
    jobctl start --config examples/config/queue.yml --skip-recurring      # the workers run them

The import enqueues one `ImportRowJob` per row inside `jobctl.batch()`: when every row has been
imported, `ImportFinishedMailer` runs once and writes its email into the outbox (a file standing in for
a mailer); if a row fails for good, `ImportFailedMailer` runs once instead, at the first failure. The
chain runs `FetchReportJob`, then both `RenderReportJob`s side by side, then `PublishReportJob` once both
are done; each step appends a line to `outbox/report.log`.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import jobctl


def _append(path: Path, line: str) -> None:
    """One whole line, even with several workers appending at once (one write with O_APPEND)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


# -- a bulk import, as a batch ----------------------------------------------------------------------


class ImportRowJob(jobctl.Job):
    """Imports one row (here: appends it to the outbox's imported.csv). A row without an email fails."""

    queue = "imports"

    def perform(self, outbox: str, row: dict[str, str]) -> None:
        if not row.get("email"):
            raise ValueError(f"row {row.get('id')} has no email")
        _append(Path(outbox) / "imported.csv", f"{row['id']},{row['email']}")


class ImportFinishedMailer(jobctl.Job):
    """Runs once, when every row is imported: the batch is its first argument."""

    queue = "mail"

    def perform(self, batch: jobctl.BatchInfo, to: str) -> None:
        outbox = Path(batch.metadata["outbox"])
        (outbox / f"import-{batch.id}.eml").write_text(
            f"To: {to}\nSubject: {batch.description}: {batch.finished} rows imported\n\n"
            f"All {batch.total} rows of {batch.metadata['file']} are in.\n")


class ImportFailedMailer(jobctl.Job):
    """Runs once, at the first row that fails for good."""

    queue = "mail"

    def perform(self, batch: jobctl.BatchInfo, to: str) -> None:
        outbox = Path(batch.metadata["outbox"])
        (outbox / f"import-{batch.id}-failed.eml").write_text(
            f"To: {to}\nSubject: {batch.description}: a row failed\n\n"
            f"See `jobctl batch {batch.id}` for the rows that failed.\n")


def import_rows(path: Path, outbox: Path, to: str = "ops@example.com") -> int:
    """Enqueue one job per row of a CSV file (columns id, email) in one batch; returns the batch's id."""
    rows = list(csv.DictReader(path.open(newline="")))
    with jobctl.batch(on_success=ImportFinishedMailer(to), on_failure=ImportFailedMailer(to),
                      description=f"import of {path.name}",
                      metadata={"file": str(path), "outbox": str(outbox)}) as batch:
        jobctl.perform_all_later([ImportRowJob(str(outbox), row) for row in rows])
    assert batch.id is not None
    return batch.id


# -- a chain: fetch, render twice side by side, publish ------------------------------------------------


class FetchReportJob(jobctl.Job):
    """Step 1."""

    def perform(self, outbox: str) -> None:
        _append(Path(outbox) / "report.log", "fetched")


class RenderReportJob(jobctl.Job):
    """Step 2, once per format (a group: both run side by side)."""

    def perform(self, outbox: str, fmt: str) -> None:
        _append(Path(outbox) / "report.log", f"rendered {fmt}")


class PublishReportJob(jobctl.Job):
    """Step 3: runs once both renders have finished."""

    def perform(self, outbox: str) -> None:
        _append(Path(outbox) / "report.log", "published")


def report_chain(outbox: Path) -> list[jobctl.JobHandle]:
    """Enqueue the whole chain in one transaction; returns its jobs' handles in order."""
    out = str(outbox)
    return jobctl.chain(FetchReportJob(out),
                        jobctl.group([RenderReportJob(out, "pdf"), RenderReportJob(out, "html")]),
                        PublishReportJob(out)).perform_later()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.app.workflows", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="enqueue a CSV file's rows in one batch")
    imp.add_argument("file", type=Path)
    imp.add_argument("--outbox", type=Path, required=True)
    ch = sub.add_parser("chain", help="enqueue the report chain")
    ch.add_argument("--outbox", type=Path, required=True)
    args = parser.parse_args(argv)
    args.outbox.mkdir(parents=True, exist_ok=True)
    if args.command == "import":
        batch_id = import_rows(args.file, args.outbox.resolve())
        print(f"batch {batch_id}: {jobctl.get_batch(batch_id).total} rows enqueued "
              f"(watch it: jobctl batch {batch_id})")
    else:
        handles = report_chain(args.outbox.resolve())
        print("chain enqueued: jobs " + ", ".join(str(h.id) for h in handles))
    return 0


if __name__ == "__main__":
    # The classes the workers find by name are those of `examples.app.workflows`, not of `__main__`.
    from examples.app.workflows import main as run

    raise SystemExit(run(sys.argv[1:]))
