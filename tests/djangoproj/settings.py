"""A Django project for jobctl's Django tests: in-process (pytest sets the databases per test) or, with
JOBCTL_TEST_DJANGO_URL set, the project `manage.py jobctl start` runs in a subprocess."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, unquote, urlsplit

from jobctl.contrib.django.compat import FRAMEWORK


def database(url: str) -> dict[str, object]:
    """A DATABASES entry for a jobctl test URL (sqlite:///path or postgresql://…?options=…)."""
    if url.startswith("sqlite:///"):
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": url[len("sqlite:///"):]}
    parts = urlsplit(url)
    options = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return {"ENGINE": "django.db.backends.postgresql", "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""), "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "", "PORT": str(parts.port or ""), "OPTIONS": options}


SECRET_KEY = "jobctl-tests"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["jobctl.contrib.django", "tests.djangoproj.djapp"]
if FRAMEWORK == "django_tasks":  # the backport connects its signal receivers (its log lines) as an app
    INSTALLED_APPS.insert(0, "django_tasks")

_URL = os.environ.get("JOBCTL_TEST_DJANGO_URL")
if _URL:
    DATABASES = {"default": database(_URL)}
    TASKS = {"default": {"BACKEND": "jobctl.contrib.django.JobctlBackend"}}
else:  # pytest points both at a fresh database per test, and the test app's models at one of them
    DATABASE_ROUTERS = ["tests.djangoproj.routers.CurrentDatabase"]
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "unset.sqlite3"},
        "pg": {"ENGINE": "django.db.backends.postgresql", "NAME": "unset"},
    }
    TASKS = {
        "default": {"BACKEND": "jobctl.contrib.django.JobctlBackend", "QUEUES": ["default", "queue-1", "low"]},
        "pg": {"BACKEND": "jobctl.contrib.django.JobctlBackend", "QUEUES": ["default", "queue-1", "low"],
               "OPTIONS": {"DATABASE": "pg"}},
    }
