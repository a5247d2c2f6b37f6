"""Settings of the example project: a blog whose posts notify subscribers through jobctl.

SQLite by default (db.sqlite3 here); DJANGO_DATABASE=postgresql://user:pass@host:port/name for PostgreSQL.
"""

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "example-only"
DEBUG = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "jobctl.contrib.django",  # manage.py jobctl, and jobctl's tables made by manage.py migrate
    "blog",
]
try:  # Django 4.2–5.2: the django-tasks backport, as an app (its signals log task events)
    import django.tasks  # noqa: F401
except ImportError:
    INSTALLED_APPS.insert(0, "django_tasks")


def _database(url: str) -> dict[str, object]:
    parts = urlsplit(url)
    options = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    return {"ENGINE": "django.db.backends.postgresql", "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""), "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "", "PORT": parts.port or "",
            "OPTIONS": {k: unquote(v) for k, v in options.items()}}


if os.environ.get("DJANGO_DATABASE"):
    DATABASES = {"default": _database(os.environ["DJANGO_DATABASE"])}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3",
                             # `manage.py test`: a file, which the test's worker processes can open too
                             "TEST": {"NAME": BASE_DIR / "test-db.sqlite3"}}}

TASKS = {
    "default": {
        "BACKEND": "jobctl.contrib.django.JobctlBackend",
        "QUEUES": ["default", "feeds"],
        "OPTIONS": {"CONFIG": str(BASE_DIR / "config" / "queue.yml")},
    }
}
