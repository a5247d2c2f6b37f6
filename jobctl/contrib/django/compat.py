"""Django's Tasks framework, wherever it lives: `django.tasks` (Django ≥ 6.0) or the `django-tasks` backport.

The two differ in names more than in behaviour: the backport's root module exports no `Task`; its
`InvalidTaskError`/`InvalidTaskBackendError` are Django 6's `InvalidTask`/`InvalidTaskBackend`; its
`normalize_json` lives in `django_tasks.utils`, not `django.utils.json`; its signal receivers (the
"django_tasks" log lines) are connected only once `django_tasks` is in INSTALLED_APPS, where Django 6
connects them on import (logger "django.tasks"). Everything else imports these names from here.
"""

from __future__ import annotations

from typing import Any

try:  # Django 6.0 and later
    from django.tasks import (
        DEFAULT_TASK_QUEUE_NAME,
        Task,
        TaskContext,
        TaskResult,
        TaskResultStatus,
        default_task_backend,
        task,
        task_backends,
    )
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY, TaskError
    from django.tasks.exceptions import InvalidTask, InvalidTaskBackend, TaskResultDoesNotExist, TaskResultMismatch
    from django.tasks.signals import task_enqueued, task_finished, task_started
    from django.utils.json import normalize_json

    FRAMEWORK = "django.tasks"
except ImportError:  # Django 4.2–5.2 with the django-tasks backport
    try:
        import django_tasks  # noqa: F401
    except ModuleNotFoundError as exc:
        import django

        raise ImportError(f"jobctl.contrib.django needs Django's Tasks framework: Django {django.__version__} has no "
                          "django.tasks (added in 6.0): install the django-tasks backport "
                          "(jobctl's django-backport extra)") from exc
    # The backport's root has no Task (Django 6's does): everything from its submodules.
    from django_tasks import default_task_backend, task_backends  # type: ignore[no-redef]
    from django_tasks.backends.base import BaseTaskBackend  # type: ignore[no-redef]
    from django_tasks.base import (  # type: ignore[no-redef]
        DEFAULT_TASK_QUEUE_NAME,
        TASK_MAX_PRIORITY,
        TASK_MIN_PRIORITY,
        Task,
        TaskContext,
        TaskError,
        TaskResult,
        TaskResultStatus,
        task,
    )
    from django_tasks.exceptions import (  # type: ignore[no-redef]
        InvalidTaskBackendError as InvalidTaskBackend,
    )
    from django_tasks.exceptions import (  # type: ignore[no-redef]
        InvalidTaskError as InvalidTask,
    )
    from django_tasks.exceptions import TaskResultDoesNotExist, TaskResultMismatch  # type: ignore[no-redef]
    from django_tasks.signals import task_enqueued, task_finished, task_started  # type: ignore[no-redef]
    from django_tasks.utils import normalize_json  # type: ignore[no-redef]

    FRAMEWORK = "django_tasks"


def task_path(task: Any) -> str:
    """How jobctl names a task in rows, logs, `jobs --class` and the monitor: `module:function`."""
    return f"{task.func.__module__}:{task.func.__qualname__}"


__all__ = [
    "DEFAULT_TASK_QUEUE_NAME",
    "FRAMEWORK",
    "TASK_MAX_PRIORITY",
    "TASK_MIN_PRIORITY",
    "BaseTaskBackend",
    "InvalidTask",
    "InvalidTaskBackend",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultMismatch",
    "TaskResultStatus",
    "default_task_backend",
    "normalize_json",
    "task",
    "task_backends",
    "task_enqueued",
    "task_finished",
    "task_path",
    "task_started",
]
