"""recurring.yml loading and validation, and resolving what tasks run: one-line errors throughout."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import pytest
import recurring_fixtures

from jobctl.errors import ConfigError
from jobctl.recurring import RecurringTask, check_tasks, load_recurring, resolve_task
from jobctl.schedule import parse_schedule

RECURRING_YML = "config/recurring.yml"
F = "recurring_fixtures"

# The Rails guide's config/recurring.yml, with Python import paths in place of the Ruby commands.
SEED_RECURRING_YML = f"""\
production:
  # Bundle and send notifications every 30 minutes
  deliver_bundled_notifications:
    command: "{F}:Bundle.deliver_all_later"
    schedule: every 30 minutes

  # Cleanup old sessions daily at 3am
  cleanup_old_sessions:
    command: "{F}:Session.cleanup_old_sessions_later"
    schedule: every day at 3am

  # Weekly digest (Sundays at 9am)
  weekly_digest:
    command: "{F}:Digest.send_weekly_later"
    schedule: every sunday at 9am

development:
  # Same jobs, but more frequent for testing
  deliver_bundled_notifications:
    command: "{F}:Bundle.deliver_all_later"
    schedule: every 5 minutes
"""

# SPEC section 6's example, with this test module's paths.
SPEC_RECURRING_YML = f"""\
production:
  deliver_bundled_notifications:
    command: "{F}:Bundle.deliver_all_later"   # an importable callable
    schedule: every 30 minutes
  cleanup_old_sessions:
    class: {F}:CleanupJob                      # or a Job class
    args: [30]
    queue: maintenance
    priority: 5
    schedule: every day at 3am
"""


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in an empty directory with no jobctl environment variables."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JOBCTL_ENV", raising=False)
    monkeypatch.delenv("JOBCTL_RECURRING_SCHEDULE", raising=False)


def write(text: str, name: str = RECURRING_YML) -> str:
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return name


def task_file(body: str, key: str = "cleanup") -> str:
    """A production file with one task whose settings are `body` (YAML, one setting a line)."""
    settings = textwrap.indent(textwrap.dedent(body), "    ")
    return write(f"production:\n  {key}:\n{settings}")


def load_error(env: str = "production") -> str:
    with pytest.raises(ConfigError) as info:
        load_recurring(env=env)
    message = str(info.value)
    assert "\n" not in message
    return message


def resolve_error(task: RecurringTask) -> str:
    with pytest.raises(ConfigError) as info:
        resolve_task(task)
    message = str(info.value)
    assert "\n" not in message
    return message


def one_task(body: str) -> RecurringTask:
    task_file(body)
    (task,) = load_recurring(env="production")
    return task


# -- loading ------------------------------------------------------------------------------


def test_the_seeds_file_loads_per_environment() -> None:
    write(SEED_RECURRING_YML)
    production = load_recurring(env="production")
    assert [t.key for t in production] == ["deliver_bundled_notifications", "cleanup_old_sessions", "weekly_digest"]
    assert [t.command for t in production] == [
        f"{F}:Bundle.deliver_all_later",
        f"{F}:Session.cleanup_old_sessions_later",
        f"{F}:Digest.send_weekly_later",
    ]
    assert [t.schedule.cron for t in production] == ["*/30 * * * *", "0 3 * * *", "0 9 * * 0"]
    assert all(t.class_path is None and t.args == () and t.queue is None for t in production)
    assert production[0].where == f"{RECURRING_YML}: production.deliver_bundled_notifications"

    (development,) = load_recurring()  # JOBCTL_ENV unset: development
    assert development.key == "deliver_bundled_notifications"
    assert development.schedule.text == "every 5 minutes"
    assert development.schedule.cron == "*/5 * * * *"


def test_the_seeds_commands_resolve_to_callables() -> None:
    write(SEED_RECURRING_YML)
    resolved = check_tasks(load_recurring(env="production"))
    assert resolved == {
        "deliver_bundled_notifications": recurring_fixtures.Bundle.deliver_all_later,
        "cleanup_old_sessions": recurring_fixtures.Session.cleanup_old_sessions_later,
        "weekly_digest": recurring_fixtures.Digest.send_weekly_later,
    }


def test_the_seeds_ruby_commands_are_refused_with_a_hint() -> None:
    write(SEED_RECURRING_YML.replace(f"{F}:Bundle", "Notification::Bundle"))
    assert load_error() == (
        f"{RECURRING_YML}: production.deliver_bundled_notifications.command: expected an import path of a "
        "callable like myapp.notifications:Bundle.deliver_all_later, got 'Notification::Bundle.deliver_all_later' "
        "(a Ruby constant path; name a Python module and attribute)"
    )


def test_the_specs_example_loads_class_args_queue_and_priority() -> None:
    write(SPEC_RECURRING_YML)
    command, job = load_recurring(env="production")
    assert job == RecurringTask(
        key="cleanup_old_sessions",
        schedule=parse_schedule("every day at 3am"),
        class_path=f"{F}:CleanupJob",
        args=(30,),
        queue="maintenance",
        priority=5,
    )
    assert job.to_dict() == {
        "key": "cleanup_old_sessions",
        "schedule": "every day at 3am",
        "cron": "0 3 * * *",
        "class": f"{F}:CleanupJob",
        "command": None,
        "args": [30],
        "queue": "maintenance",
        "priority": 5,
        "kwargs": {},
        "timezone": None,
        "description": None,
    }
    assert command.to_dict()["class"] is None
    assert command.to_dict()["command"] == f"{F}:Bundle.deliver_all_later"
    assert check_tasks([command, job]) == {
        command.key: recurring_fixtures.Bundle.deliver_all_later,
        job.key: recurring_fixtures.CleanupJob,
    }


def test_jobctl_env_picks_the_section_and_env_overrides_it(monkeypatch: pytest.MonkeyPatch) -> None:
    write(SEED_RECURRING_YML)
    monkeypatch.setenv("JOBCTL_ENV", "production")
    assert len(load_recurring()) == 3
    assert len(load_recurring(env="development")) == 1


def test_a_missing_section_names_the_sections_present() -> None:
    write(SEED_RECURRING_YML)
    assert load_error(env="staging") == (
        f"{RECURRING_YML}: no section for environment 'staging' (JOBCTL_ENV); sections present: production, development"
    )


def test_a_flat_file_is_one_section_for_every_environment() -> None:
    write(f"""\
        nightly:
          class: {F}.CleanupJob
          args: 7
          schedule: "0 2 * * * Europe/Paris"
          description: Nightly cleanup
    """)
    for env in ("production", "development"):
        (task,) = load_recurring(env=env)
        assert task.class_path == f"{F}:CleanupJob"
        assert task.args == (7,)  # a single argument is wrapped, as in Solid Queue
        assert task.schedule.timezone == "Europe/Paris"
        assert task.description == "Nightly cleanup"
        assert task.where == f"{RECURRING_YML}: nightly"


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "production:\ndevelopment:\n", "production: {}\n"])
def test_an_empty_file_or_section_has_no_tasks(text: str) -> None:
    write(text)
    assert load_recurring(env="production") == ()


def test_the_default_file_may_be_absent() -> None:
    assert load_recurring() == ()
    assert load_recurring(env="production") == ()


def test_a_file_named_explicitly_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"^config/recurring\.yml: no such file$"):
        load_recurring(explicit=True)
    with pytest.raises(ConfigError, match=r"^elsewhere\.yml: no such file$"):
        load_recurring("elsewhere.yml", explicit=True)
    monkeypatch.setenv("JOBCTL_RECURRING_SCHEDULE", "named.yml")
    with pytest.raises(ConfigError, match=r"^named\.yml: no such file$"):
        load_recurring()


def test_the_environment_variable_names_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    write(SEED_RECURRING_YML, "other/tasks.yml")
    monkeypatch.setenv("JOBCTL_RECURRING_SCHEDULE", "other/tasks.yml")
    (task,) = load_recurring()
    assert task.where == "other/tasks.yml: development.deliver_bundled_notifications"


def test_a_path_not_named_explicitly_is_optional() -> None:
    assert load_recurring("nowhere.yml") == ()


def test_yaml_anchors_and_merges_work() -> None:
    write(f"""\
        defaults: &defaults
          queue: maintenance
          priority: -3
        production:
          one:
            <<: *defaults
            class: {F}:CleanupJob
            args: [1]
            schedule: every hour
          two:
            <<: *defaults
            command: {F}:Session.cleanup_old_sessions_later
            kwargs: {{days: 9}}
            schedule: every hour at minute 30
    """)
    one, two = load_recurring(env="production")
    assert (one.queue, one.priority, two.queue, two.priority) == ("maintenance", -3, "maintenance", -3)
    assert two.kwargs == {"days": 9}
    assert check_tasks([one, two]).keys() == {"one", "two"}


def test_arguments_keep_their_order_and_nulls_mean_unset() -> None:
    task = one_task(f"""\
        command: {F}:Digest.send_weekly_later
        schedule: every week
        args: null
        kwargs: null
        queue: null
        priority: null
        description: null
    """)
    assert (task.args, task.kwargs, task.queue, task.priority, task.description) == ((), {}, None, None, None)


def test_to_dict_stores_arguments_in_their_json_form() -> None:
    task = one_task(f"""\
        class: {F}:AnyArgsJob
        schedule: every 15 minutes
        args: [2026-01-02, "x", [1, 2], {{a: null}}]
        kwargs: {{limit: 10}}
    """)
    assert task.args == (dt.date(2026, 1, 2), "x", [1, 2], {"a": None})
    data = task.to_dict()
    assert data["args"] == [{"__jobctl__": "date", "value": "2026-01-02"}, "x", [1, 2], {"a": None}]
    assert data["kwargs"] == {"limit": 10}
    json.dumps(data)


def test_tasks_can_be_built_in_code_and_compared() -> None:
    schedule = parse_schedule("every minute")
    task = RecurringTask(key="k", schedule=schedule, command=f"{F}:Bundle.deliver_all_later")
    assert task == RecurringTask(key="k", schedule=schedule, command=f"{F}:Bundle.deliver_all_later")
    assert hash(task) == hash(RecurringTask(key="k", schedule=schedule, command=f"{F}:Bundle.deliver_all_later"))
    with pytest.raises(ValueError, match="exactly one of class_path or command"):
        RecurringTask(key="k", schedule=schedule)
    with pytest.raises(ValueError, match="exactly one of class_path or command"):
        RecurringTask(key="k", schedule=schedule, command="a:b", class_path="a:C")


# -- load errors: `FILE: ENV.KEY.field: expected …, got …` ---------------------------------

AT = f"{RECURRING_YML}: production.cleanup"
OK_SCHEDULE = "schedule: every hour\n"
OK_CLASS = f"class: {F}:CleanupJob\n"
OK_COMMAND = f"command: {F}:Bundle.deliver_all_later\n"
TASK_KEYS = "schedule, class, command, args, kwargs, queue, priority, description"
QUEUE_EXPECTED = "expected a queue name (no spaces, commas or *) or null"
PRIORITY_EXPECTED = "expected an integer from -2147483648 to 2147483647 or null"
CLASS_EXPECTED = "expected an import path of a jobctl.Job subclass like myapp.jobs:CleanupJob"
COMMAND_EXPECTED = "expected an import path of a callable like myapp.notifications:Bundle.deliver_all_later"
ARGS_EXPECTED = "expected a list of arguments or a single argument (keyword arguments go under kwargs)"
SCHEDULE_EXPECTED = 'expected a cron like "0 3 * * *" or a form like "every day at 3am"'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (OK_SCHEDULE + OK_CLASS + "cron: '* * * * *'\n", f"{AT}.cron: unknown key (expected one of: {TASK_KEYS})"),
        (OK_SCHEDULE + OK_CLASS + "queue_name: x\n", f"{AT}.queue_name: unknown key (expected one of: {TASK_KEYS})"),
        (
            OK_SCHEDULE + OK_CLASS + OK_COMMAND,
            f"{AT}: expected exactly one of class (a job class) or command (a callable), got both",
        ),
        (
            OK_SCHEDULE + "args: [1]\n",
            f"{AT}: expected exactly one of class (a job class) or command (a callable), got neither",
        ),
        (OK_CLASS, f"{AT}.schedule: {SCHEDULE_EXPECTED}, got nothing (the key is missing)"),
        (OK_CLASS + "schedule: 5\n", f"{AT}.schedule: {SCHEDULE_EXPECTED}, got 5"),
        (OK_CLASS + "schedule: null\n", f"{AT}.schedule: {SCHEDULE_EXPECTED}, got null"),
        (OK_CLASS + "schedule: [every hour]\n", f"{AT}.schedule: {SCHEDULE_EXPECTED}, got a list"),
        (OK_SCHEDULE + "class: CleanupJob\n", f"{AT}.class: {CLASS_EXPECTED}, got 'CleanupJob'"),
        (OK_SCHEDULE + "class: my-app.jobs:Cleanup\n", f"{AT}.class: {CLASS_EXPECTED}, got 'my-app.jobs:Cleanup'"),
        (OK_SCHEDULE + "class: 'myapp.jobs:'\n", f"{AT}.class: {CLASS_EXPECTED}, got 'myapp.jobs:'"),
        (OK_SCHEDULE + "class: null\n", f"{AT}.class: {CLASS_EXPECTED}, got null"),
        (OK_SCHEDULE + "class: {a: 1}\n", f"{AT}.class: {CLASS_EXPECTED}, got a mapping"),
        (OK_SCHEDULE + "command: 'puts 1'\n", f"{AT}.command: {COMMAND_EXPECTED}, got 'puts 1'"),
        (OK_SCHEDULE + "command: 'os:system(\"rm\")'\n", f"{AT}.command: {COMMAND_EXPECTED}, got 'os:system(\"rm\")'"),
        (OK_SCHEDULE + "command: 7\n", f"{AT}.command: {COMMAND_EXPECTED}, got 7"),
        (OK_SCHEDULE + OK_CLASS + "args: {days: 3}\n", f"{AT}.args: {ARGS_EXPECTED}, got a mapping"),
        (OK_SCHEDULE + OK_CLASS + "kwargs: [1]\n", f"{AT}.kwargs: expected a mapping of keyword arguments, got a list"),
        (
            OK_SCHEDULE + OK_CLASS + "kwargs: {1: x}\n",
            f"{AT}.kwargs: expected keyword argument names (identifiers), got 1",
        ),
        (
            OK_SCHEDULE + OK_CLASS + "kwargs: {'two words': x}\n",
            f"{AT}.kwargs: expected keyword argument names (identifiers), got 'two words'",
        ),
        (
            OK_SCHEDULE + OK_CLASS + "args: [.nan]\n",
            f"{AT}.args: cannot serialise argument args[0]: nan is not a finite number",
        ),
        (
            OK_SCHEDULE + OK_CLASS + "args: [{1: x}]\n",
            f"{AT}.args: cannot serialise argument args[0]: dict key 1 is a int, keys must be str",
        ),
        (
            OK_SCHEDULE + OK_CLASS + "kwargs: {data: !!binary aGVsbG8=}\n",
            f"{AT}.kwargs: cannot serialise argument kwargs['data']: builtins.bytes is not a supported type",
        ),
        (
            OK_SCHEDULE + OK_CLASS + "args: &loop [*loop]\n",
            f"{AT}.args: expected arguments that can be stored as JSON, got a value that contains itself",
        ),
        (OK_SCHEDULE + OK_CLASS + "queue: ''\n", f"{AT}.queue: {QUEUE_EXPECTED}, got ''"),
        (OK_SCHEDULE + OK_CLASS + "queue: a,b\n", f"{AT}.queue: {QUEUE_EXPECTED}, got 'a,b'"),
        (OK_SCHEDULE + OK_CLASS + "queue: 'low *'\n", f"{AT}.queue: {QUEUE_EXPECTED}, got 'low *'"),
        (OK_SCHEDULE + OK_CLASS + "queue: 3\n", f"{AT}.queue: {QUEUE_EXPECTED}, got 3"),
        (OK_SCHEDULE + OK_CLASS + "priority: high\n", f"{AT}.priority: {PRIORITY_EXPECTED}, got 'high'"),
        (OK_SCHEDULE + OK_CLASS + "priority: 1.5\n", f"{AT}.priority: {PRIORITY_EXPECTED}, got 1.5"),
        (OK_SCHEDULE + OK_CLASS + "priority: true\n", f"{AT}.priority: {PRIORITY_EXPECTED}, got true"),
        (OK_SCHEDULE + OK_CLASS + "priority: 2147483648\n", f"{AT}.priority: {PRIORITY_EXPECTED}, got 2147483648"),
        (OK_SCHEDULE + OK_CLASS + "description: [a]\n", f"{AT}.description: expected a text or null, got a list"),
        (
            OK_SCHEDULE + OK_CLASS + "queue: <%= ENV['Q'] %>\n",
            f"{AT}.queue: {QUEUE_EXPECTED}, got \"<%= ENV['Q'] %>\" "
            "(ERB is not evaluated in jobctl; write the value itself)",
        ),
    ],
)
def test_bad_task_settings_are_one_line_errors(body: str, message: str) -> None:
    task_file(body)
    assert load_error().startswith(message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "production:\n  cleanup: every day\n",
            f"{AT}: expected a mapping of task settings (schedule, and class or command), got 'every day'",
        ),
        (
            "production:\n  cleanup:\n  other:\n    schedule: every hour\n    class: a:B\n",
            f"{AT}: expected a mapping of task settings (schedule, and class or command), got null",
        ),
        (
            f"production:\n  123:\n    schedule: every hour\n    class: {F}:CleanupJob\n",
            f"{RECURRING_YML}: production.123: expected a task name (a non-empty string), got 123",
        ),
        (
            f"production:\n  '':\n    schedule: every hour\n    class: {F}:CleanupJob\n",
            f"{RECURRING_YML}: production.: expected a task name (a non-empty string), got ''",
        ),
        (
            "production: [a, b]\n",
            f"{RECURRING_YML}: production: expected a mapping of recurring tasks, got a list",
        ),
        (
            "- a\n- b\n",
            f"{RECURRING_YML}: expected a mapping of environment sections or recurring tasks, got a list",
        ),
        ("production:\n  cleanup: [\n", f"{RECURRING_YML}: line 3: expected the node content, but found"),
    ],
)
def test_bad_file_shapes_are_one_line_errors(text: str, message: str) -> None:
    write(text)
    assert load_error().startswith(message)


def test_a_flat_file_error_has_no_environment_in_its_path() -> None:
    write(f"cleanup:\n  class: {F}:CleanupJob\n  schedule: every hour\n  queue: 1\n")
    assert load_error() == f"{RECURRING_YML}: cleanup.queue: {QUEUE_EXPECTED}, got 1"


@pytest.mark.parametrize(
    ("schedule", "why"),
    [
        ("every 61 minutes", "61 does not divide 60"),
        ("every day at 00:40 and 15:20", "have different minutes"),
        ("tomorrow", "expected 5 cron fields"),
        ("every fortnight", "'fortnight' is not day, weekday, week, month or a day's name"),
        ("0 3 * * * Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("61 * * * *", "invalid cron"),
        ("", "empty schedule"),
    ],
)
def test_bad_schedules_are_rejected_with_the_task_key_and_the_text(schedule: str, why: str) -> None:
    task_file(f"{OK_CLASS}schedule: {schedule!r}\n", key="nightly_cleanup")
    message = load_error()
    lead = f"{RECURRING_YML}: production.nightly_cleanup.schedule: {SCHEDULE_EXPECTED}, got {schedule!r} ("
    assert message.startswith(lead)
    assert why in message
    assert message.endswith(")")


def test_the_first_bad_task_stops_loading() -> None:
    write(f"""\
        production:
          good:
            class: {F}:CleanupJob
            schedule: every hour
          bad:
            class: {F}:CleanupJob
            schedule: every 7 minutes
    """)
    assert load_error().startswith(f"{RECURRING_YML}: production.bad.schedule: ")


# -- resolving what tasks run ---------------------------------------------------------------


def test_a_class_task_resolves_to_its_job_class() -> None:
    task = one_task(f"{OK_SCHEDULE}class: {F}.CleanupJob\nargs: [30]\n")
    assert resolve_task(task) is recurring_fixtures.CleanupJob


def test_a_command_task_resolves_to_its_callable() -> None:
    task = one_task(f"{OK_SCHEDULE}command: {F}:Session.cleanup_old_sessions_later\nargs: 14\n")
    assert resolve_task(task) == recurring_fixtures.Session.cleanup_old_sessions_later


def test_a_dotted_command_is_module_dot_attribute() -> None:
    task = one_task(f"{OK_SCHEDULE}command: {F}.ping\n")
    assert task.command == f"{F}:ping"  # normalised as import_path reads it: the last dot splits
    assert resolve_task(task) is recurring_fixtures.ping


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "class: nowhere_at_all.jobs:CleanupJob\n",
            f"{AT}.class: expected an importable jobctl.Job subclass, got 'nowhere_at_all.jobs:CleanupJob' "
            "(ModuleNotFoundError: No module named 'nowhere_at_all')",
        ),
        (
            f"class: {F}:MissingJob\n",
            f"{AT}.class: expected an importable jobctl.Job subclass, got '{F}:MissingJob' "
            f"(AttributeError: module '{F}' has no attribute 'MissingJob')",
        ),
        (
            f"class: {F}:NotAJob\n",
            f"{AT}.class: expected a jobctl.Job subclass, got '{F}:NotAJob' (a class not derived from jobctl.Job)",
        ),
        (
            f"class: {F}:Bundle.deliver_all_later\n",
            f"{AT}.class: expected a jobctl.Job subclass, got '{F}:Bundle.deliver_all_later' (of type method)",
        ),
        (
            f"class: {F}:CleanupJob\nargs: [1, 2]\n",
            f"{AT}.args: expected arguments {F}:CleanupJob.perform accepts, got args [1, 2] "
            "(too many positional arguments)",
        ),
        (
            f"class: {F}:CleanupJob\n",
            f"{AT}.args: expected arguments {F}:CleanupJob.perform accepts, got args [] "
            "(missing a required argument: 'days')",
        ),
        (
            "command: nowhere_at_all:run\n",
            f"{AT}.command: expected an importable callable, got 'nowhere_at_all:run' "
            "(ModuleNotFoundError: No module named 'nowhere_at_all')",
        ),
        (
            "command: Session.cleanup_old_sessions_later\n",  # the Rails guide's Ruby spelling
            f"{AT}.command: expected an importable callable, got 'Session:cleanup_old_sessions_later' "
            "(ModuleNotFoundError: No module named 'Session')",
        ),
        (
            f"command: {F}:Bundle.send_everything\n",
            f"{AT}.command: expected an importable callable, got '{F}:Bundle.send_everything' "
            "(AttributeError: type object 'Bundle' has no attribute 'send_everything')",
        ),
        (
            f"command: {F}.Session.cleanup_old_sessions_later\n",
            f"{AT}.command: expected an importable callable, got '{F}.Session:cleanup_old_sessions_later' "
            f"(ModuleNotFoundError: No module named '{F}.Session'; '{F}' is not a package; "
            f"if Session is an attribute of {F}, write {F}:Session.cleanup_old_sessions_later)",
        ),
        (
            f"command: {F}:NOT_CALLABLE\n",
            f"{AT}.command: expected a callable, got '{F}:NOT_CALLABLE' (of type int)",
        ),
        (
            f"command: {F}:CleanupJob\n",
            f"{AT}.command: expected a callable, got '{F}:CleanupJob' "
            "(a jobctl.Job subclass: name it with class instead of command)",
        ),
        (
            f"command: {F}:Bundle.deliver_all_later\nargs: [1]\n",
            f"{AT}.args: expected arguments {F}:Bundle.deliver_all_later accepts, got args [1] "
            "(too many positional arguments)",
        ),
        (
            f"command: {F}:Digest.send_weekly_later\nkwargs: {{dry: true}}\n",
            f"{AT}.args: expected arguments {F}:Digest.send_weekly_later accepts, got args [] and kwargs "
            "{'dry': True} (got an unexpected keyword argument 'dry')",
        ),
    ],
)
def test_what_a_task_runs_is_checked_when_resolved(body: str, message: str) -> None:
    task = one_task(OK_SCHEDULE + body)  # loading is pure: it imports nothing
    assert resolve_error(task) == message


def test_a_module_failing_on_import_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_recurring_module.py").write_text("raise RuntimeError('no config\\nfor you')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    task = one_task(f"{OK_SCHEDULE}command: broken_recurring_module:run\n")
    assert resolve_error(task) == (
        f"{AT}.command: expected an importable callable, got 'broken_recurring_module:run' "
        "(RuntimeError: no config for you)"
    )


def test_check_tasks_stops_at_the_first_bad_task() -> None:
    write(f"""\
        production:
          good:
            command: {F}:Bundle.deliver_all_later
            schedule: every hour
          bad:
            class: {F}:NotAJob
            schedule: every hour
    """)
    tasks = load_recurring(env="production")
    with pytest.raises(ConfigError, match=r"^config/recurring\.yml: production\.bad\.class: expected a jobctl\.Job"):
        check_tasks(tasks)
    assert check_tasks(tasks[:1]) == {"good": recurring_fixtures.Bundle.deliver_all_later}


def test_tasks_built_in_code_name_their_key_in_errors() -> None:
    task = RecurringTask(key="adhoc", schedule=parse_schedule("every hour"), command=f"{F}:NOT_CALLABLE")
    assert (
        resolve_error(task)
        == f"recurring task 'adhoc': command: expected a callable, got '{F}:NOT_CALLABLE' (of type int)"
    )


# -- hostile files (issue 19) -----------------------------------------------------------------


def test_a_billion_laughs_in_kwargs_is_one_line() -> None:
    laughs = '  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
        f"  {b}: &{b} [{', '.join([f'*{a}'] * 10)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
    )
    task_file(OK_SCHEDULE + OK_CLASS + "kwargs:\n" + laughs)
    assert load_error() == (
        f"{RECURRING_YML}: line 10: more than 100000 values once aliases are expanded (the bound for a config file)"
    )


def test_arguments_nested_3000_deep_are_one_line() -> None:
    task_file(OK_SCHEDULE + OK_CLASS + "args: " + "[" * 3000 + "]" * 3000 + "\n")
    assert load_error() == f"{RECURRING_YML}: line 5: nested more than 100 levels deep"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            OK_SCHEDULE + OK_CLASS + 'queue: "low\\0"\n',
            f"{AT}.queue: expected a queue name without NUL characters, got 'low\\x00'",
        ),
        (
            OK_SCHEDULE + OK_CLASS + 'description: "nightly\\0"\n',
            f"{AT}.description: expected a text without NUL characters, got 'nightly\\x00'",
        ),
        (
            OK_SCHEDULE + OK_CLASS + 'args: ["a\\0b"]\n',
            None,  # arguments travel as JSON, which escapes NUL: stored as they are
        ),
    ],
)
def test_strings_stored_in_the_database_hold_no_nul(body: str, message: str | None) -> None:
    task_file(body)
    if message is None:
        assert load_recurring(env="production")[0].args == ("a\0b",)
    else:
        assert load_error() == message


def test_a_task_key_with_a_nul_is_refused() -> None:
    write(f'production:\n  "clean\\0up":\n    schedule: every hour\n    class: {F}:CleanupJob\n')
    assert load_error() == (
        f"{RECURRING_YML}: production.clean\\x00up: expected a task name without NUL characters, got 'clean\\x00up'"
    )


class NulQueueJob(recurring_fixtures.CleanupJob):
    queue = "main\0tenance"


class HugePriorityJob(recurring_fixtures.CleanupJob):
    priority = 2**31


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("NulQueueJob", "NulQueueJob.queue cannot hold a NUL character (the database cannot store it), "
                        "got 'main\\x00tenance'"),
        ("HugePriorityJob", "HugePriorityJob.priority expects an integer from -2147483648 to 2147483647 "
                            "(stored in 32 bits), got 2147483648"),
    ],
)
def test_a_class_whose_own_queue_or_priority_cannot_be_stored_is_refused(name: str, why: str) -> None:
    task = one_task(f"{OK_SCHEDULE}class: {__name__}:{name}\n")
    assert resolve_error(task) == f"{AT}.class: {__name__}:{why}"
    # The task's own queue and priority replace the class's: nothing to refuse then.
    assert resolve_task(one_task(f"{OK_SCHEDULE}class: {__name__}:{name}\nqueue: q\npriority: 1\nargs: [3]\n"))
