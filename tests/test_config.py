"""queue.yml loading and validation: defaults, environments, YAML features, one-line errors."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from jobctl.config import (
    DispatcherConfig,
    QueueConfig,
    WorkerConfig,
    load_queue_config,
    load_yaml_sections,
    parse_duration,
    parse_queue_selector,
)
from jobctl.errors import ConfigError

QUEUE_YML = "config/queue.yml"

# The Rails guide's config/solid_queue.yml, verbatim.
SEED_SOLID_QUEUE_YML = """\
production:
  dispatchers:
    - polling_interval: 1
      batch_size: 500

  workers:
    - queues: default
      threads: 3
      processes: 2
      polling_interval: 0.1

    - queues: mailers,notifications
      threads: 5
      processes: 1
      polling_interval: 0.1

    - queues: imports,exports
      threads: 2
      processes: 1
      polling_interval: 1

    - queues: maintenance
      threads: 1
      processes: 1
      polling_interval: 5

development:
  workers:
    - queues: "*"
      threads: 3
      processes: 1
      polling_interval: 1
"""

QUEUES_EXPECTED = (
    '--queues: expected a queue name, a list of names, "a,b", "*" or a prefix like "staging*", got '
)
NO_DISPATCHER_WARNING = "no dispatchers: scheduled jobs, retries and blocked jobs need a dispatcher elsewhere"


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in an empty directory with no jobctl environment variables."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JOBCTL_ENV", raising=False)
    monkeypatch.delenv("JOBCTL_CONFIG", raising=False)


def write(text: str, name: str = QUEUE_YML) -> str:
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return name


def load_error(text: str, env: str = "production") -> str:
    write(text)
    with pytest.raises(ConfigError) as caught:
        load_queue_config(env=env)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- durations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (30, 30.0),
        (0.1, 0.1),
        (0, 0.0),
        ("10", 10.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1w", 604800.0),
        ("1.5h", 5400.0),
        (" 5 m ", 300.0),
    ],
)
def test_parse_duration_accepts_seconds_and_units(value: object, seconds: float) -> None:
    assert parse_duration(value, where="x") == seconds


@pytest.mark.parametrize(
    "value", [-1, -0.5, "-5s", "abc", "5x", "5 minutes", "", True, None, [1], float("inf")]
)
def test_parse_duration_rejects_negative_and_garbage(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^--shutdown-timeout: expected a duration \(seconds, or 30s, 5m"):
        parse_duration(value, where="--shutdown-timeout")


def test_parse_duration_message_names_where_and_value() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_duration("soon", where="--shutdown-timeout")
    assert str(caught.value) == (
        "--shutdown-timeout: expected a duration (seconds, or 30s, 5m, 2h, 1d, 1w), got 'soon'"
    )


def test_parse_duration_positive_rejects_zero() -> None:
    assert parse_duration("0s", where="x") == 0.0
    with pytest.raises(ConfigError, match=r"^x: expected a positive duration .*, got '0s'$"):
        parse_duration("0s", where="x", positive=True)


# --- queue selectors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "queues"),
    [
        ("default", ("default",)),
        ("mailers,notifications", ("mailers", "notifications")),
        ("mailers, notifications", ("mailers", "notifications")),
        (["real_time", "background"], ("real_time", "background")),
        (["a,b", "c"], ("a", "b", "c")),
        ("*", ("*",)),
        ("staging*", ("staging*",)),
        (["critical", "staging*", "*"], ("critical", "staging*", "*")),
        ("a,b,a", ("a", "b")),
    ],
)
def test_parse_queue_selector(value: object, queues: tuple[str, ...]) -> None:
    assert parse_queue_selector(value) == queues


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "--queues: expected non-empty queue names, got ''"),
        ("mailers,,notifications", "--queues: expected non-empty queue names, got 'mailers,,notifications'"),
        (["a", " "], "--queues: expected non-empty queue names, got a list"),
        ("sta*ging", "--queues: expected a queue name or a prefix ending in \"*\", got 'sta*ging'"),
        ("my queue", "--queues: expected a queue name or a prefix ending in \"*\", got 'my queue'"),
        ([], QUEUES_EXPECTED + "a list"),
        (None, QUEUES_EXPECTED + "null"),
        ([1], QUEUES_EXPECTED + "1"),
    ],
)
def test_parse_queue_selector_rejects(value: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_queue_selector(value, where="--queues")
    assert str(caught.value) == message


# --- which file, which environment --------------------------------------------------------


def test_no_default_file_runs_defaults() -> None:
    config = load_queue_config()
    assert config == QueueConfig()
    assert config.source is None
    assert config.environment == "development"
    assert config.workers == (WorkerConfig(queues=("*",), threads=3, processes=2),)
    assert config.dispatchers == (DispatcherConfig(polling_interval=1.0, batch_size=500),)
    assert config.warnings == ()


def test_defaults_match_the_spec() -> None:
    worker, dispatcher, config = WorkerConfig(), DispatcherConfig(), QueueConfig()
    assert (worker.polling_interval, worker.fallback_polling_interval, worker.prefetch) == (0.1, 5.0, None)
    assert (worker.max_memory_mb, worker.max_jobs_per_process) == (None, None)
    assert (config.shutdown_timeout, config.process_heartbeat_interval, config.process_alive_threshold) == (
        5.0,
        10.0,
        60.0,
    )
    assert (config.preserve_finished_jobs, config.clear_finished_jobs_after, config.max_crashes) == (
        True,
        86400.0,
        2,
    )
    assert (config.database, config.imports) == (None, ())
    assert dispatcher.concurrency_maintenance is True


def test_config_objects_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        QueueConfig().max_crashes = 5  # type: ignore[misc]


def test_explicit_path_must_exist() -> None:
    with pytest.raises(ConfigError) as caught:
        load_queue_config("elsewhere/queue.yml", explicit=True)
    assert str(caught.value) == "elsewhere/queue.yml: no such file"


def test_a_path_not_marked_explicit_may_be_absent() -> None:
    assert load_queue_config("elsewhere/queue.yml").source is None


def test_jobctl_config_names_the_file_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBCTL_CONFIG", "deploy/jobs.yml")
    with pytest.raises(ConfigError, match=r"^deploy/jobs\.yml: no such file$"):
        load_queue_config()
    write("workers: [{queues: only_this}]\n", "deploy/jobs.yml")
    config = load_queue_config()
    assert config.source == "deploy/jobs.yml"
    assert config.workers[0].queues == ("only_this",)


def test_empty_environment_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBCTL_CONFIG", "")
    monkeypatch.setenv("JOBCTL_ENV", "")
    config = load_queue_config()
    assert (config.source, config.environment) == (None, "development")


def test_default_file_is_read_when_present() -> None:
    write("dispatchers: [{batch_size: 50}]\n")
    config = load_queue_config()
    assert config.source == QUEUE_YML
    assert config.dispatchers == (DispatcherConfig(batch_size=50),)


def test_unreadable_file_is_one_line() -> None:
    Path("config/queue.yml").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"^config/queue\.yml: cannot read \(Is a directory\)$"):
        load_queue_config(explicit=True)


def test_seed_example_loads_unchanged_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBCTL_ENV", "production")
    write(SEED_SOLID_QUEUE_YML, "config/solid_queue.yml")
    config = load_queue_config("config/solid_queue.yml")
    assert config.environment == "production"
    assert config.dispatchers == (DispatcherConfig(polling_interval=1.0, batch_size=500),)
    assert [(w.queues, w.threads, w.processes, w.polling_interval) for w in config.workers] == [
        (("default",), 3, 2, 0.1),
        (("mailers", "notifications"), 5, 1, 0.1),
        (("imports", "exports"), 2, 1, 1.0),
        (("maintenance",), 1, 1, 5.0),
    ]
    assert config.warnings == ()


def test_seed_example_development_has_workers_but_no_dispatcher() -> None:
    write(SEED_SOLID_QUEUE_YML)
    config = load_queue_config()
    assert config.environment == "development"
    assert config.workers == (WorkerConfig(queues=("*",), threads=3, processes=1, polling_interval=1.0),)
    assert config.dispatchers == ()
    assert config.warnings == (f"config/queue.yml: development: {NO_DISPATCHER_WARNING}",)


def test_env_argument_beats_jobctl_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBCTL_ENV", "production")
    write(SEED_SOLID_QUEUE_YML)
    assert load_queue_config(env="development").environment == "development"
    assert len(load_queue_config().workers) == 4


def test_missing_environment_section_names_the_sections_present(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBCTL_ENV", "staging")
    write(SEED_SOLID_QUEUE_YML)
    with pytest.raises(ConfigError) as caught:
        load_queue_config()
    assert str(caught.value) == (
        "config/queue.yml: no section for environment 'staging' (JOBCTL_ENV); "
        "sections present: production, development"
    )


def test_flat_file_is_one_section_for_every_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBCTL_ENV", "anything")
    write(
        """\
        workers:
          - queues: [critical, default]
        dispatchers:
          - polling_interval: 2s
        shutdown_timeout: 1m
        """
    )
    config = load_queue_config()
    assert config.environment == "anything"
    assert config.workers == (WorkerConfig(queues=("critical", "default")),)
    assert config.dispatchers == (DispatcherConfig(polling_interval=2.0),)
    assert config.shutdown_timeout == 60.0


def test_anchors_and_merges() -> None:
    # Rails 8's generated config/queue.yml (ERB replaced by its value), plus a merge override.
    write(
        """\
        default: &default
          dispatchers:
            - polling_interval: 1
              batch_size: 500
          workers:
            - &worker
              queues: "*"
              threads: 3
              processes: 1
              polling_interval: 0.1

        development:
          <<: *default

        production:
          <<: *default
          shutdown_timeout: 30s
          workers:
            - <<: *worker
              threads: 10
            - <<: *worker
              queues: mailers
        """
    )
    development = load_queue_config()
    assert development.workers == (WorkerConfig(processes=1),)
    assert development.dispatchers == (DispatcherConfig(),)
    production = load_queue_config(env="production")
    assert production.shutdown_timeout == 30.0
    assert production.workers == (
        WorkerConfig(processes=1, threads=10),
        WorkerConfig(processes=1, queues=("mailers",)),
    )
    assert production.dispatchers == (DispatcherConfig(),)


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "production:\n", "production: {}\n"])
def test_empty_file_or_section_runs_defaults(text: str) -> None:
    write(text)
    config = load_queue_config(env="production")
    assert (config.workers, config.dispatchers) == (QueueConfig().workers, QueueConfig().dispatchers)
    assert config.source == QUEUE_YML
    assert config.warnings == ()


def test_section_with_only_settings_runs_default_processes() -> None:
    write("production:\n  max_crashes: 5\n")
    config = load_queue_config(env="production")
    assert config.max_crashes == 5
    assert (config.workers, config.dispatchers) == (QueueConfig().workers, QueueConfig().dispatchers)


def test_dispatchers_without_workers_runs_no_workers() -> None:
    write("production:\n  dispatchers: [{}]\n")
    config = load_queue_config(env="production")
    assert (config.workers, config.dispatchers) == ((), (DispatcherConfig(),))
    assert config.warnings == (
        "config/queue.yml: production: no workers: jobs run only where a worker runs elsewhere",
    )


def test_empty_lists_run_nothing_and_warn_twice() -> None:
    write("workers: []\ndispatchers:\n")
    config = load_queue_config()
    assert (config.workers, config.dispatchers) == ((), ())
    assert config.warnings == (
        f"config/queue.yml: {NO_DISPATCHER_WARNING}",
        "config/queue.yml: no workers: jobs run only where a worker runs elsewhere",
    )


def test_every_key_is_read() -> None:
    write(
        """\
        production:
          workers:
            - queues: staging*
              threads: 8
              processes: 4
              polling_interval: 250
              fallback_polling_interval: 1m
              prefetch: 0
              max_memory_mb: 512
              max_jobs_per_process: 1000
          dispatchers:
            - polling_interval: 0.5
              batch_size: 100
              concurrency_maintenance: false
              concurrency_maintenance_interval: 5m
          shutdown_timeout: 0
          process_heartbeat_interval: 15s
          process_alive_threshold: 2m
          preserve_finished_jobs: false
          clear_finished_jobs_after: 1w
          max_crashes: 0
          database: postgresql://app@db/app
          imports: [myapp.jobs, myapp.mailers]
        """
    )
    config = load_queue_config(env="production")
    assert config == QueueConfig(
        workers=(WorkerConfig(("staging*",), 8, 4, 250.0, 60.0, 0, 512, 1000),),
        dispatchers=(DispatcherConfig(0.5, 100, False, 300.0),),
        shutdown_timeout=0.0,
        process_heartbeat_interval=15.0,
        process_alive_threshold=120.0,
        preserve_finished_jobs=False,
        clear_finished_jobs_after=604800.0,
        max_crashes=0,
        database="postgresql://app@db/app",
        imports=("myapp.jobs", "myapp.mailers"),
        source=QUEUE_YML,
        environment="production",
    )


def test_nullable_keys_and_single_import() -> None:
    write("workers: [{prefetch: null, max_memory_mb: null}]\nimports: myapp.jobs\ndatabase: null\n")
    config = load_queue_config()
    assert config.workers == (WorkerConfig(),)
    assert (config.imports, config.database) == (("myapp.jobs",), None)


# --- errors: FILE: KEY.PATH: expected …, got … --------------------------------------------

WORKERS = "production:\n  workers:\n    - queues: default\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            WORKERS + "    - threads: three\n",
            "config/queue.yml: production.workers[1].threads: expected a positive integer, got 'three'",
        ),
        (
            WORKERS + "      threads: true\n",
            "config/queue.yml: production.workers[0].threads: expected a positive integer, got true",
        ),
        (
            WORKERS + "      processes: 0\n",
            "config/queue.yml: production.workers[0].processes: expected a positive integer, got 0",
        ),
        (
            WORKERS + "      threads: 2.5\n",
            "config/queue.yml: production.workers[0].threads: expected a positive integer, got 2.5",
        ),
        (
            WORKERS + "      prefetch: -1\n",
            "config/queue.yml: production.workers[0].prefetch: "
            "expected a non-negative integer or null, got -1",
        ),
        (
            WORKERS + "      max_memory_mb: 0\n",
            "config/queue.yml: production.workers[0].max_memory_mb: "
            "expected a positive integer or null, got 0",
        ),
        (
            WORKERS + "      polling_interval: -1\n",
            "config/queue.yml: production.workers[0].polling_interval: "
            "expected a positive duration (seconds, or 30s, 5m, 2h, 1d, 1w), got -1",
        ),
        (
            WORKERS + "      queues: a,,b\n",
            "config/queue.yml: production.workers[0].queues: expected non-empty queue names, got 'a,,b'",
        ),
        (
            WORKERS + '      processes: <%= ENV.fetch("JOB_CONCURRENCY", 1) %>\n',
            "config/queue.yml: production.workers[0].processes: expected a positive integer, "
            "got '<%= ENV.fetch(\"JOB_CONCURRENCY\", 1) %>' "
            "(ERB is not evaluated in jobctl; write the value itself)",
        ),
        (
            "production:\n  dispatchers:\n    - batch_size: '500'\n",
            "config/queue.yml: production.dispatchers[0].batch_size: expected a positive integer, got '500'",
        ),
        (
            "production:\n  dispatchers:\n    - concurrency_maintenance: yes please\n",
            "config/queue.yml: production.dispatchers[0].concurrency_maintenance: "
            "expected true or false, got 'yes please'",
        ),
        (
            "production:\n  shutdown_timeout: 5 minutes\n",
            "config/queue.yml: production.shutdown_timeout: "
            "expected a duration (seconds, or 30s, 5m, 2h, 1d, 1w), got '5 minutes'",
        ),
        (
            "production:\n  max_crashes: -1\n",
            "config/queue.yml: production.max_crashes: expected a non-negative integer, got -1",
        ),
        (
            "production:\n  preserve_finished_jobs: 1\n",
            "config/queue.yml: production.preserve_finished_jobs: expected true or false, got 1",
        ),
        (
            "production:\n  database: ''\n",
            "config/queue.yml: production.database: expected a database URL, got ''",
        ),
        (
            "production:\n  imports: [myapp.jobs, 'myapp/jobs.py']\n",
            "config/queue.yml: production.imports[1]: "
            "expected a module name like myapp.jobs, got 'myapp/jobs.py'",
        ),
        (
            "production:\n  imports: {a: 1}\n",
            "config/queue.yml: production.imports: "
            "expected a module name or a list of module names, got a mapping",
        ),
        (
            "production:\n  workers:\n    queues: default\n",
            "config/queue.yml: production.workers: expected a list of worker settings, got a mapping",
        ),
        (
            "production:\n  workers:\n    -\n",
            "config/queue.yml: production.workers[0]: expected a mapping of worker settings, got null",
        ),
        (
            "production:\n  dispatchers: [1]\n",
            "config/queue.yml: production.dispatchers[0]: expected a mapping of dispatcher settings, got 1",
        ),
        (
            "production: [workers]\n",
            "config/queue.yml: production: expected a mapping of queue settings, got a list",
        ),
        (
            "- production\n",
            "config/queue.yml: expected a mapping of environment sections or queue settings, got a list",
        ),
        (
            "production:\n  process_heartbeat_interval: 1m\n",
            "config/queue.yml: production.process_alive_threshold: "
            "expected more than process_heartbeat_interval (60s), got 60s",
        ),
    ],
)
def test_bad_values_name_file_key_path_and_expectation(text: str, message: str) -> None:
    assert load_error(text) == message


def test_unknown_keys_list_the_known_ones() -> None:
    assert load_error(WORKERS + "      thread: 3\n") == (
        "config/queue.yml: production.workers[0].thread: unknown key (expected one of: queues, threads, "
        "processes, polling_interval, fallback_polling_interval, prefetch, max_memory_mb, "
        "max_jobs_per_process)"
    )
    assert load_error("production:\n  dispatchers: [{batch: 1}]\n") == (
        "config/queue.yml: production.dispatchers[0].batch: unknown key (expected one of: polling_interval, "
        "batch_size, concurrency_maintenance, concurrency_maintenance_interval)"
    )
    assert load_error("production:\n  worker: []\n") == (
        "config/queue.yml: production.worker: unknown key (expected one of: workers, dispatchers, "
        "shutdown_timeout, process_heartbeat_interval, process_alive_threshold, preserve_finished_jobs, "
        "clear_finished_jobs_after, max_crashes, database, pooler, listen_database, imports, metrics_port, "
        "metrics_host, metrics_interval, otel)"
    )


def test_flat_file_key_paths_have_no_environment() -> None:
    assert load_error("workers:\n  - threads: 0\n") == (
        "config/queue.yml: workers[0].threads: expected a positive integer, got 0"
    )
    # Settings keys make a file flat, so a stray environment beside them is an unknown key.
    assert load_error("workers: []\nproduction: {}\n").startswith(
        "config/queue.yml: production: unknown key (expected one of: workers, dispatchers,"
    )


def test_database_url_is_never_echoed_in_errors() -> None:
    message = load_error("production:\n  database: {url: 'postgresql://u:secret@db/app'}\n")
    assert message == "config/queue.yml: production.database: expected a database URL, got a mapping"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "production:\n  workers:\n    - queues: default\n     threads: 3\n",
            "config/queue.yml: line 4: expected <block end>, but found '<block mapping start>'",
        ),
        ("production:\n  <<: *default\n", "config/queue.yml: line 2: found undefined alias 'default'"),
        (
            "workers:\n  - queues: *\n",
            "config/queue.yml: line 2: expected alphabetic or numeric character, but found '\\n' "
            '(a bare * starts a YAML alias: write "*" in quotes)',
        ),
        ('production: "open\n', "config/queue.yml: line 2: found unexpected end of stream"),
    ],
)
def test_malformed_yaml_names_the_line(text: str, message: str) -> None:
    assert load_error(text) == message


# --- the shared section loader (also used for recurring.yml) -------------------------------


def test_load_yaml_sections_returns_section_and_prefix() -> None:
    write(SEED_SOLID_QUEUE_YML)
    section, prefix = load_yaml_sections(QUEUE_YML, "development", kind="queue")
    assert prefix == "development"
    assert section == {"workers": [{"queues": "*", "threads": 3, "processes": 1, "polling_interval": 1}]}


def test_load_yaml_sections_recurring_flat_and_sectioned() -> None:
    flat = write("cleanup:\n  class: myapp.jobs:CleanupJob\n  schedule: every day\n", "config/recurring.yml")
    assert load_yaml_sections(flat, "production", kind="recurring") == (
        {"cleanup": {"class": "myapp.jobs:CleanupJob", "schedule": "every day"}},
        "",
    )
    sectioned = write(
        "production:\n  cleanup:\n    command: myapp:clean\n    schedule: every hour\ndevelopment:\n",
        "config/recurring.yml",
    )
    assert load_yaml_sections(sectioned, "production", kind="recurring") == (
        {"cleanup": {"command": "myapp:clean", "schedule": "every hour"}},
        "production",
    )
    assert load_yaml_sections(sectioned, "development", kind="recurring") == ({}, "development")
    with pytest.raises(ConfigError, match=r"sections present: production, development$"):
        load_yaml_sections(sectioned, "test", kind="recurring")


def test_load_yaml_sections_missing_file() -> None:
    with pytest.raises(ConfigError, match=r"^config/recurring\.yml: no such file$"):
        load_yaml_sections("config/recurring.yml", "production", kind="recurring")


# --- hostile files and values the runtime cannot run (issue 19) ------------------------------

BILLION_LAUGHS = """\
production:
  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
  i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_alias_expansion_is_bounded() -> None:
    assert load_error(BILLION_LAUGHS) == (
        "config/queue.yml: line 6: more than 100000 values once aliases are expanded (the bound for a config file)"
    )


def test_a_long_list_of_aliases_is_bounded_too() -> None:
    text = "production:\n  x: &x [1, 2, 3, 4, 5, 6, 7, 8, 9]\n  y: [" + ", ".join(["*x"] * 20_000) + "]\n"
    assert load_error(text) == (
        "config/queue.yml: line 3: more than 100000 values once aliases are expanded (the bound for a config file)"
    )


def test_nesting_depth_is_bounded() -> None:
    assert load_error("production:\n  workers: " + "[" * 3000 + "]" * 3000 + "\n") == (
        "config/queue.yml: line 2: nested more than 100 levels deep"
    )
    assert load_error("a:\n" + "".join(f"{'  ' * i}k{i}:\n" for i in range(1, 150))).startswith(
        "config/queue.yml: line 100: nested more than 100 levels deep"
    )


def test_depth_counts_through_aliases() -> None:
    deep = "[" * 40 + "]" * 40
    text = f"production:\n  a: &a {deep}\n  b: &b {'[' * 40}*a{']' * 40}\n  c: {'[' * 40}*b{']' * 40}\n"
    assert load_error(text) == "config/queue.yml: line 4: nested more than 100 levels deep"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("production:\n  max_crashes: " + "9" * 5000 + "\n", "config/queue.yml: line 2: "),
        ("production:\n  imports: 2026-13-45\n", "config/queue.yml: line 2: "),
    ],
)
def test_values_yaml_itself_cannot_build_are_one_line(text: str, message: str) -> None:
    assert load_error(text).startswith(message)


def test_anchors_within_the_bounds_still_load() -> None:
    write("production:\n  workers:\n    - &w {queues: default, threads: 2}\n" + "    - *w\n" * 50)
    assert load_queue_config(env="production").workers == (
        WorkerConfig(queues=("default",), threads=2),
    ) * 51


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            WORKERS + "      prefetch: 2147483648\n",
            "config/queue.yml: production.workers[0].prefetch: "
            "expected an integer from 0 to 1000000 or null, got 2147483648",
        ),
        (
            WORKERS + "      prefetch: 99999999999999999999\n",
            "config/queue.yml: production.workers[0].prefetch: "
            "expected an integer from 0 to 1000000 or null, got 99999999999999999999",
        ),
        (
            WORKERS + "      threads: 10001\n",
            "config/queue.yml: production.workers[0].threads: expected an integer from 1 to 10000, got 10001",
        ),
        (
            WORKERS + "      processes: 1001\n",
            "config/queue.yml: production.workers[0].processes: expected an integer from 1 to 1000, got 1001",
        ),
        (
            WORKERS + "      max_memory_mb: 2147483648\n",
            "config/queue.yml: production.workers[0].max_memory_mb: "
            "expected an integer from 1 to 2147483647 or null, got 2147483648",
        ),
        (
            WORKERS + "      max_jobs_per_process: 9223372036854775808\n",
            "config/queue.yml: production.workers[0].max_jobs_per_process: "
            "expected an integer from 1 to 2147483647 or null, got 9223372036854775808",
        ),
        (
            "production:\n  dispatchers:\n    - batch_size: 99999999999\n",
            "config/queue.yml: production.dispatchers[0].batch_size: "
            "expected an integer from 1 to 2147483647, got 99999999999",
        ),
        (
            "production:\n  max_crashes: 2147483648\n",
            "config/queue.yml: production.max_crashes: expected an integer from 0 to 2147483647, got 2147483648",
        ),
        (
            "production:\n  shutdown_timeout: 99999999999w\n",
            "config/queue.yml: production.shutdown_timeout: expected a duration (seconds, or 30s, 5m, 2h, 1d, 1w) "
            "of at most 100 years (3155760000 seconds), got '99999999999w'",
        ),
        (
            WORKERS + "      polling_interval: .inf\n",
            "config/queue.yml: production.workers[0].polling_interval: expected a positive duration "
            "(seconds, or 30s, 5m, 2h, 1d, 1w) of at most 100 years (3155760000 seconds), got inf",
        ),
        (
            WORKERS + '      queues: "low\\0"\n',
            "config/queue.yml: production.workers[0].queues: expected queue names without NUL characters, "
            "got 'low\\x00'",
        ),
        (
            "production:\n  database: \"postgresql://db/app\\0\"\n",
            "config/queue.yml: production.database: expected a database URL without NUL characters, "
            "got a text with a NUL character",
        ),
    ],
)
def test_values_the_runtime_cannot_run_are_refused_with_the_bound(text: str, message: str) -> None:
    assert load_error(text) == message


def test_the_largest_values_allowed_load() -> None:
    write(
        WORKERS + "      threads: 10000\n      processes: 1000\n      prefetch: 1000000\n"
        "      max_memory_mb: 2147483647\n      max_jobs_per_process: 2147483647\n"
        "  dispatchers:\n    - batch_size: 2147483647\n  max_crashes: 2147483647\n"
        "  shutdown_timeout: 5217w\n"
    )
    config = load_queue_config(env="production")
    assert config.workers[0].prefetch == 1_000_000 and config.dispatchers[0].batch_size == 2**31 - 1
    assert config.shutdown_timeout == 5217 * 604800


@pytest.mark.parametrize(
    "value", ["99999999999w", 10**400, 1e300, "9" * 400, float("nan"), float("inf"), 3155760001]
)
def test_parse_duration_refuses_what_no_clock_can_wait(value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_duration(value, where="--wait")
    assert str(caught.value).startswith(
        "--wait: expected a duration (seconds, or 30s, 5m, 2h, 1d, 1w) of at most 100 years (3155760000 seconds), got "
    )
    assert parse_duration(3155760000, where="--wait") == 3155760000.0


def test_the_library_and_the_config_share_one_duration_bound() -> None:
    from jobctl import config, job

    assert job._MAX_WAIT_S == config.MAX_DURATION_S == 100 * 365.25 * 86400
