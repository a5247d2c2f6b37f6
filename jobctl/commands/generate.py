"""`jobctl generate job NAME`: a thin job module and its test, as Rails' job-writing conventions have it
(the model does the work in `NAME_now()`; the job only calls it)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Annotated

import typer

from jobctl.commands.common import say
from jobctl.errors import JobctlError, UsageError

generate_app = typer.Typer(help="Write new code from templates.", no_args_is_help=True)

JOB_TEMPLATE = '''\
"""{class_name}: a thin job. The work lives in the model's `{method}_now()`; this only calls it."""

from __future__ import annotations

from typing import Any

import jobctl


class {class_name}(jobctl.Job):
    queue = "{queue}"
    # retry_on = (jobctl.RetryOn(ConnectionError, wait="polynomially_longer", attempts=5),)
    # discard_on = (jobctl.RecordNotFound,)

    def perform(self, record: Any) -> None:
        # Pass records (with a registered locator) or ids, never loaded data: the worker reloads them.
        record.{method}_now()
'''

TEST_TEMPLATE = '''\
"""Tests for {class_name} (the model's `{method}_now()` is tested with the model itself)."""

from __future__ import annotations

import jobctl
from jobctl.testing import assert_enqueued, perform_enqueued_jobs

from {module} import {class_name}


class FakeRecord:
    """Stands in for your model: found by id, counts calls."""

    table: dict[int, FakeRecord] = {{}}

    def __init__(self, id: int) -> None:
        self.id, self.calls = id, 0
        FakeRecord.table[id] = self

    def {method}_now(self) -> None:
        self.calls += 1


jobctl.register_locator(FakeRecord, dump=lambda r: r.id, load=FakeRecord.table.__getitem__)


def test_calls_{method}_now() -> None:
    record = FakeRecord(1)
    {class_name}.perform_now(record)
    assert record.calls == 1


def test_uses_the_{queue_ident}_queue() -> None:
    assert {class_name}.queue == "{queue}"


def test_can_be_enqueued_and_performed(jobctl_queue: object) -> None:
    record = FakeRecord(2)
    {class_name}.perform_later(record)
    assert_enqueued({class_name}, args=[record], queue="{queue}")
    perform_enqueued_jobs()
    assert record.calls == 1
'''


CONFTEST = '''\
"""pytest's configuration for this project (written by `jobctl generate`; yours to extend).

With pytest's default import mode a conftest.py puts its own directory on sys.path, so tests run by
a plain `pytest` from here can import this project's modules (`from jobs.… import …`).
"""
'''


class FileExists(JobctlError):
    """The generator refuses to overwrite."""

    exit_code = 1


def snake(name: str) -> str:
    """`NotifyRecipients` → `notify_recipients`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


@generate_app.command("job")
def job(
    name: Annotated[str, typer.Argument(metavar="NAME", help="CamelCase job name, e.g. NotifyRecipients.")],
    package: Annotated[str, typer.Option(metavar="DIR", help="Where the job module goes.")] = "jobs",
    tests: Annotated[str, typer.Option(metavar="DIR", help="Where its test goes.")] = "tests",
    queue: Annotated[str, typer.Option(metavar="QUEUE", help="The job's queue.")] = "default",
) -> None:
    """Write DIR/NAME.py (a thin job calling a model's `NAME_now()`) and a test using jobctl.testing."""
    base = name.removesuffix("Job")
    if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", base):
        raise UsageError(f"NAME: {name!r} is not a CamelCase name like NotifyRecipients")
    method = snake(base)
    class_name = f"{base}Job"
    job_path = Path(package) / f"{method}.py"
    test_path = Path(tests) / f"test_{method}_job.py"
    for path in (job_path, test_path):
        if path.exists():
            raise FileExists(f"{path} already exists; nothing written")
    module = ".".join((*Path(package).parts, method))
    fields = {"class_name": class_name, "method": method, "queue": queue, "module": module,
              "queue_ident": re.sub(r"\W", "_", queue)}
    job_path.parent.mkdir(parents=True, exist_ok=True)
    test_path.parent.mkdir(parents=True, exist_ok=True)
    job_path.write_text(JOB_TEMPLATE.format(**fields))
    test_path.write_text(TEST_TEMPLATE.format(**fields))
    created = [job_path, test_path]
    # Without it a plain `pytest` cannot import the job module (only `python -m pytest` adds the
    # current directory to sys.path). A conftest.py already here is the user's: left alone, and
    # with pytest's default import mode it does the same.
    conftest = Path("conftest.py")
    if not conftest.exists():
        conftest.write_text(CONFTEST)
        created.append(conftest)
    hint = "" if importlib.util.find_spec("pytest") else " (after `pip install pytest`)"
    say("".join(f"created {path}\n" for path in created) + f"run its tests from here with: pytest {test_path}{hint}")
