"""One exception hierarchy; each error knows the exit code the CLI uses for it."""

from __future__ import annotations


class JobctlError(Exception):
    """Base of every error jobctl raises on purpose; its message is one line users can act on."""

    exit_code: int = 1


class ConfigError(JobctlError):
    """A config file, a schedule or an option value is wrong (file, key path, what was expected)."""

    exit_code = 1


class UsageError(JobctlError):
    """The command line itself is wrong."""

    exit_code = 2


class Refused(JobctlError):
    """A bulk change was not confirmed (or could not be asked about: no terminal, no --yes)."""

    exit_code = 1


class JobNotFound(JobctlError):
    """An ID names no job."""

    exit_code = 3


class DatabaseError(JobctlError):
    """The database is unreachable or its URL is unusable (the password is never in the message)."""

    exit_code = 69


class SchemaOutdated(JobctlError):
    """The database schema is older than this jobctl; `jobctl db migrate` upgrades it."""

    exit_code = 1


class SerializationError(JobctlError, TypeError):
    """An argument cannot be stored as JSON; raised at enqueue time, naming the argument."""


class RecordNotFound(JobctlError):
    """A record passed to a job no longer exists when the job runs."""


class JobClassError(JobctlError):
    """A class path does not name an importable subclass of `jobctl.Job`."""


class ArgumentTooDeep(SerializationError):
    """An argument nests lists, dicts or tuples deeper than `jobctl.arguments.MAX_DEPTH`, or contains itself."""


class OptionError(JobctlError, ValueError):
    """A per-call option (`Job.set`) or a job class's queue or priority has a value the store cannot hold."""

    exit_code = 2


class JobFailed(JobctlError):
    """`handle.result()` of a job that failed: its last run's error class, message and traceback."""

    def __init__(self, job_id: int, error_class: str, message: str, traceback: str | None) -> None:
        super().__init__(f"job {job_id} failed: {error_class}: {message}" if error_class else f"job {job_id} failed")
        self.job_id = job_id
        """The job's id."""
        self.error_class = error_class
        """The exception's class, `module.QualName`."""
        self.message = message
        """The exception's message."""
        self.traceback = traceback
        """The formatted traceback of the last run, when there was one."""


class JobDiscarded(JobctlError):
    """`handle.result()` of a job that was discarded (by `discard_on`, a limit or an operator)."""

    def __init__(self, job_id: int, error_class: str = "", message: str = "") -> None:
        why = f": {error_class}: {message}" if error_class else ""
        super().__init__(f"job {job_id} was discarded{why}")
        self.job_id = job_id
        """The job's id."""
        self.error_class = error_class
        """The exception that discarded it, when one did."""
        self.message = message
        """Its message."""


class UnreadableArguments(JobctlError):
    """A stored job's arguments are not jobctl's JSON form (a hand-edited or corrupted row); it is failed, never run."""


class WorkerCrashed(JobctlError):
    """A run ended by its worker process dying (killed, out of memory, a crash in C code); what the error
    reporter receives for it, from the supervisor."""


class JobTimeout(JobctlError):
    """A run went past its job's `timeout`: it fails with this (retried when a `retry_on` rule names it)."""
