"""`python manage.py jobctl VERB …`: jobctl's command line (`start`, `stats`, `top`, …) on this project.

manage.py has run `django.setup()`; this points jobctl at the TASKS backend's database (as JOBCTL_*
environment variables built from DATABASES and the backend's OPTIONS), imports every
app's `tasks` module (so workers find the tasks rows name), closes Django's connections (none may be
inherited over fork), then runs jobctl's CLI in this process: `start` forks its workers from here.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "jobctl's command line on this project's database: start, stats, jobs, show, top, … (jobctl --help)."
    requires_system_checks: Any = []
    requires_migrations_checks = False

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("args", nargs=argparse.REMAINDER, help="a jobctl verb and its options")

    def run_from_argv(self, argv: list[str]) -> None:
        # Everything after `jobctl` is jobctl's, --help and --database included: no Django option parsing.
        sys.exit(run(argv[2:]))

    def handle(self, *args: Any, **options: Any) -> None:
        code = run(list(args))
        if code:
            raise CommandError(f"jobctl {' '.join(args)} exited with {code}", returncode=code)


def run(argv: list[str]) -> int:
    """Run jobctl's CLI with `argv` on the project's database; its exit code."""
    from django.db import connections
    from django.utils.module_loading import autodiscover_modules

    from jobctl.cli import main

    from ...backend import jobctl_backends

    backends = jobctl_backends()
    if backends:
        # As environment variables (inherited by forked workers), not configure(): the CLI's --config and
        # --database re-configure jobctl, and must win over these as over any environment.
        os.environ.update(backends[0].environment())
    else:
        print("jobctl: no TASKS backend is jobctl.contrib.django.JobctlBackend; using jobctl's own database "
              "settings (JOBCTL_DATABASE_URL, config/queue.yml)", file=sys.stderr)
    autodiscover_modules("tasks")
    connections.close_all()
    return main(argv)
