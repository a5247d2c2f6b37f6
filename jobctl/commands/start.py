"""`jobctl start`: validate the configuration, then run the supervisor."""

from __future__ import annotations

import enum
import importlib
import shutil
import tempfile
from typing import TYPE_CHECKING, Annotated

import typer

from jobctl import database
from jobctl.commands.common import GLOBALS, resolve_url, say
from jobctl.config import QueueConfig, load_queue_config
from jobctl.errors import ConfigError
from jobctl.formatting import plural
from jobctl.store import open_store

if TYPE_CHECKING:
    from jobctl.recurring import RecurringTask


class LogFormat(enum.StrEnum):
    text = "text"
    json = "json"


class LogLevel(enum.StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


def load(recurring_file: str | None) -> tuple[QueueConfig, tuple[RecurringTask, ...]]:
    """Load and check queue.yml, the `imports`, recurring.yml and every class or command path."""
    from jobctl.recurring import check_tasks, load_recurring

    config = load_queue_config(GLOBALS.config, explicit=GLOBALS.config is not None)
    for module in config.imports:
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise ConfigError(f"{config.source or 'queue config'}: imports: cannot import {module!r}: "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    tasks = load_recurring(recurring_file, explicit=recurring_file is not None)
    check_tasks(tasks)
    return config, tasks


def start(
    check: Annotated[bool, typer.Option("--check", help="Validate queue.yml, recurring.yml, imports and every "
                                        "class or command path, then exit.")] = False,
    skip_recurring: Annotated[bool, typer.Option("--skip-recurring", help="Run no scheduler for recurring tasks.")]
    = False,
    recurring_schedule_file: Annotated[
        str | None, typer.Option(metavar="PATH", help="Recurring tasks (else JOBCTL_RECURRING_SCHEDULE, "
                                 "config/recurring.yml).")] = None,
    log_format: Annotated[LogFormat, typer.Option(help="Log lines as text or JSON.")] = LogFormat.text,
    log_level: Annotated[LogLevel, typer.Option(help="Least severe level logged.")] = LogLevel.info,
    metrics_port: Annotated[
        int | None, typer.Option(metavar="PORT", min=1, max=65535,
                                 help="Serve Prometheus metrics on http://HOST:PORT/metrics (HOST: `metrics_host:`, "
                                 "127.0.0.1 unless set; else `metrics_port:`).")] = None,
) -> None:
    """Run the supervisor: workers, dispatchers and the scheduler, until TERM/INT (graceful) or QUIT."""
    config, tasks = load(recurring_schedule_file)
    port = metrics_port if metrics_port is not None else config.metrics_port
    if check:
        for warning in config.warnings:
            say(f"warning: {warning}")
        workers, groups, dispatchers = sum(w.processes for w in config.workers), len(config.workers), \
            len(config.dispatchers)
        say(f"{config.source or 'defaults (no config file)'} [{config.environment}]: ok — {workers} worker "
            f"{plural(workers, 'process')} in {groups} {plural(groups, 'group')}, {dispatchers} "
            f"{plural(dispatchers, 'dispatcher')}, {len(tasks)} recurring {plural(len(tasks), 'task')}")
        return
    store = open_store(resolve_url(), database.resolve_options())
    try:
        store.ensure_schema()  # refuses an outdated schema; gives a new, empty SQLite file its own
    finally:
        store.close()  # the supervisor opens its own connection; children open theirs after fork

    from jobctl.runtime import logs
    from jobctl.runtime.supervisor import Supervisor

    logs.setup(log_level.value, log_format.value)
    for warning in config.warnings:
        logs.event(30, "config_warning", warning)
    from jobctl.recurring import register_tasks

    register_tasks(tasks)  # before forking: workers run command tasks by key from this registry
    from jobctl import tracing

    tracing.use_config(config.otel)
    setup = None
    if port is not None:
        from jobctl.runtime import metrics
        from jobctl.runtime.supervisor import MetricsSetup

        sock = metrics.listen(config.metrics_host, port)
        setup = MetricsSetup(sock, tempfile.mkdtemp(prefix="jobctl-metrics-"))
        metrics.enable(setup.directory)
    try:
        code = Supervisor(store, config, () if skip_recurring else tasks, setup).run()
    finally:
        if setup is not None:
            setup.sock.close()
            shutil.rmtree(setup.directory, ignore_errors=True)
    raise typer.Exit(code)
