"""Which database jobctl talks to: `configure()`, `using()`, and this process's store."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from jobctl import hooks, tracing, urls
from jobctl.errors import ConfigError
from jobctl.store import Store, StoreOptions, open_store

if TYPE_CHECKING:
    from jobctl.config import QueueConfig
    from jobctl.hooks import Reporter

_configured_url: str | None = None
_config_path: str | None = None
_configured_pooler: str | None = None
_configured_listen_url: str | None = None
_store: Store | None = None
_store_pid = 0
_lock = threading.Lock()
# Stores inherited over fork: their sockets belong to the parent, so the child must never
# close them (a psycopg close would end the parent's session). Kept here, never collected.
_inherited: list[Store] = []
_using: ContextVar[Any] = ContextVar("jobctl_using", default=None)
_UNSET: Any = object()


def configure(*, database_url: str | None = None, config: str | None = None, pooler: str | None = None,
              listen_database_url: str | None = None, error_reporter: Reporter | None = _UNSET,
              otel: bool | None = _UNSET) -> None:
    """Set the database URL (wins over every other source) and/or the queue config path; `pooler=
    "transaction"` when the URL goes through a transaction-pooling PgBouncer, and `listen_database_url`
    a direct URL past it for LISTEN (else workers poll). Each wins over its environment variable
    (JOBCTL_POOLER, JOBCTL_LISTEN_DATABASE_URL) and the queue config's `pooler:` / `listen_database:`.

    `error_reporter(exception, job)` is called for every failed run (`job` a `jobctl.hooks.ReportedJob`) and
    every unexpected error of jobctl's own (`job` None); `otel=True` makes spans for enqueues and runs
    (wins over JOBCTL_OTEL and the queue config's `otel:`). Either is left as it is when not given, and a call
    that gives only them leaves the database settings as they are."""
    from jobctl.config import POOLER_MODES

    if pooler is not None and pooler not in POOLER_MODES:
        raise ValueError(f"pooler={pooler!r} (expected one of {', '.join(POOLER_MODES)}, or None)")
    if error_reporter is not _UNSET:
        hooks.set_error_reporter(error_reporter)
    if otel is not _UNSET:
        tracing.configure(otel)
    if (error_reporter is not _UNSET or otel is not _UNSET) and all(
            v is None for v in (database_url, config, pooler, listen_database_url)):
        return
    global _configured_url, _config_path, _configured_pooler, _configured_listen_url
    with _lock:
        _configured_url = database_url
        _config_path = config
        _configured_pooler = pooler
        _configured_listen_url = listen_database_url
        _drop_store(close=True)


def override(*, database_url: str | None = None, config: str | None = None) -> None:
    """Set the URL and/or the config path given (the CLI's --database, --config), keeping what
    `configure()` set for the rest (the Django command configures the URL, then the CLI its config)."""
    global _configured_url, _config_path
    with _lock:
        if database_url is not None:
            _configured_url = database_url
        if config is not None:
            _config_path = config
        _drop_store(close=True)


def resolve_url(cli_url: str | None = None) -> urls.DatabaseURL:
    """The URL to use, first found wins: configure()/--database, JOBCTL_DATABASE_URL, `database:`
    in the queue config, DATABASE_URL, then `sqlite:///jobctl.sqlite3`."""
    for candidate in (cli_url, _configured_url, os.environ.get("JOBCTL_DATABASE_URL")):
        if candidate:
            return urls.parse(candidate)
    from_config = _config_database()
    if from_config:
        return urls.parse(from_config)
    return urls.parse(os.environ.get("DATABASE_URL") or urls.DEFAULT_URL)


def _queue_config() -> QueueConfig:
    from jobctl.config import load_queue_config

    return load_queue_config(_config_path, explicit=_config_path is not None)


tracing.set_config_source(lambda: _queue_config().otel)


def _config_database() -> str | None:
    return _queue_config().database


def resolve_options() -> StoreOptions:
    """How to connect beyond the URL, first found wins for each: configure(), the environment
    (JOBCTL_POOLER, JOBCTL_LISTEN_DATABASE_URL), the queue config (`pooler:`, `listen_database:`)."""
    from jobctl.config import POOLER_MODES

    pooler = _configured_pooler or os.environ.get("JOBCTL_POOLER") or None
    listen = _configured_listen_url or os.environ.get("JOBCTL_LISTEN_DATABASE_URL") or None
    if pooler is None or listen is None:
        config = _queue_config()
        pooler = pooler or config.pooler
        listen = listen or config.listen_database
    if pooler is not None and pooler not in POOLER_MODES:
        raise ConfigError(f"JOBCTL_POOLER: expected one of {', '.join(POOLER_MODES)}, got {pooler!r}")
    return StoreOptions(pooler=pooler, listen_url=urls.parse(listen) if listen else None)


def get_store() -> Store:
    """This process's store, opened on first use and again after a fork."""
    global _store, _store_pid
    with _lock:
        if _store is None or _store_pid != os.getpid():
            _store = open_store(resolve_url(), resolve_options())
            _store_pid = os.getpid()
        return _store


def adopt(store: Store) -> None:
    """Make `store` this process's store (a runtime child's: its jobs' enqueues and progress reports share
    one connection, to the database `jobctl start` resolved)."""
    global _store, _store_pid
    with _lock:
        if _store is not None and _store is not store:
            _drop_store(close=_store_pid == os.getpid())
        _store, _store_pid = store, os.getpid()


def _drop_store(*, close: bool) -> None:
    global _store
    if _store is not None:
        if close and _store_pid == os.getpid():
            _store.close()
        else:
            _inherited.append(_store)
    _store = None


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    _drop_store(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)


@contextmanager
def using(conn: Any) -> Iterator[Any]:
    """Enqueue through the caller's own connection: jobs exist iff the caller's transaction commits.

    `conn` is a psycopg Connection (PostgreSQL) or a sqlite3.Connection (SQLite) to jobctl's own
    database, or a SQLAlchemy 2 `Session` or `Connection` on such a driver (psycopg 3 or pysqlite),
    whose current transaction the enqueues join. A connection to another database raises ValueError.
    Yields what was given.
    """
    driver = driver_connection(conn)
    get_store().check_connection(driver)
    token = _using.set(driver)
    try:
        yield conn
    finally:
        _using.reset(token)


def driver_connection(conn: Any) -> Any:
    """The DB-API connection under a SQLAlchemy Session or Connection (its current transaction begun);
    anything else as it is. SQLAlchemy is never imported here: only what the caller passes is used."""
    if not type(conn).__module__.startswith("sqlalchemy"):
        return conn
    if callable(getattr(conn, "get_bind", None)):  # a Session (or scoped_session): its connection now
        conn = conn.connection()
    elif callable(getattr(conn, "in_transaction", None)) and not conn.in_transaction():
        # A Connection begins its transaction with its first statement (autobegin); ours go to the
        # driver, so begin it here, or its commit() would not know there is anything to commit.
        conn.begin()
    fairy = getattr(conn, "connection", None)  # a Connection's pooled DB-API connection
    driver = getattr(fairy, "dbapi_connection", None)
    if driver is None:
        raise ValueError(f"using() needs a SQLAlchemy Session or Connection with an open connection, got {conn!r}")
    return driver


def current_connection() -> Any:
    """The connection of the innermost `using()` block, or None."""
    return _using.get()


_joined: ContextVar[tuple[int | None, int | None]] = ContextVar("jobctl_batch", default=(None, None))
"""(the batch enqueues join, the batch member running in this thread): one variable, set once per run."""


def current_batch() -> int | None:
    """The batch jobs enqueued now join: the innermost `jobctl.batch()` block's, or the batch of the job
    this thread is running; None outside both."""
    return _joined.get()[0]


def running_job() -> int | None:
    """The id of the batch member this thread is running for a worker, or None (other jobs do not say)."""
    return _joined.get()[1]


def join(batch_id: int | None, running_job: int | None = None) -> Token[tuple[int | None, int | None]]:
    """Enqueues join `batch_id` (None: no batch) until `leave(token)`; `running_job` is the member whose run
    this is (None: keep the one there is). Plain calls, not a context manager: the worker runs every batch
    member through here, and a generator-based `with` costs a no-op job's drain a measurable share."""
    return _joined.set((batch_id, _joined.get()[1] if running_job is None else running_job))


def leave(token: Token[tuple[int | None, int | None]]) -> None:
    """Undo the `join` that gave `token`."""
    _joined.reset(token)
