# jobctl — everyday commands. `make test` needs nothing but Python 3.11 and the PostgreSQL 15
# binaries: it makes the virtualenv, starts a throwaway PostgreSQL, runs everything, stops it.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DATABASE ?=

.PHONY: venv test lint typecheck pytest clean dist

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# The distribution was once named "jobctl" (taken on PyPI): drop it, and its metadata, first.
	if $(PY) -m pip show -q jobctl >/dev/null 2>&1; then $(PY) -m pip uninstall -q -y jobctl; fi
	rm -rf jobctl.egg-info
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

lint: venv
	$(VENV)/bin/ruff check jobctl tests tools examples

typecheck: venv
	$(VENV)/bin/mypy

# The whole suite on both backends against a fresh PostgreSQL cluster, stopped however pytest ends.
pytest: venv test-deps
	$(PY) tests/pgcluster.py run -- $(PY) -m pytest -q $(PYTEST_ARGS)

# Debian's PgBouncer for the pooler tests, when missing and we may install packages (root, as CI
# runs); without it those tests are skipped, saying why.
.PHONY: test-deps
test-deps:
	@command -v pgbouncer >/dev/null 2>&1 || test -x /usr/sbin/pgbouncer || [ "$$(id -u)" != 0 ] || \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer >/dev/null 2>&1 || \
	  { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer >/dev/null 2>&1; } || \
	  echo "test-deps: could not install pgbouncer; the pooler tests will be skipped"

test: lint typecheck pytest test-django6

# Django 6 needs Python >= 3.12; the project's 3.11 venv tests the django-tasks backport on Django 5.2. The
# first Python >= 3.12 found (on PATH, or pyenv's versions) builds .venv-django6 from this checkout.
VENV6 ?= .venv-django6
STAMP6 := $(VENV6)/.installed-stamp
DJANGO_TESTS := tests/test_django.py tests/test_django_runtime.py tests/test_django_example.py
PYTHON312 ?= $(shell for p in python3.14 python3.13 python3.12; do \
	  $$p -c 'import sys; assert sys.version_info >= (3, 12)' >/dev/null 2>&1 && { command -v $$p; exit 0; }; done; \
	  for d in $$HOME/.pyenv/versions/3.1[2-9]*; do test -x $$d/bin/python3 && { echo $$d/bin/python3; exit 0; }; done)

.PHONY: venv-django6 test-django6
venv-django6: $(STAMP6)

$(STAMP6): pyproject.toml constraints.txt constraints-django6.txt
	$(PYTHON312) -m venv $(VENV6)
	$(VENV6)/bin/python -m pip install -q --upgrade pip
	grep -iv '^django' constraints.txt > $(VENV6)/constraints-base.txt
	$(VENV6)/bin/python -m pip install -q -c $(VENV6)/constraints-base.txt -c constraints-django6.txt -e '.[pytest,django]'
	touch $(STAMP6)

# The Django tests again on Django 6 (django.tasks), against a fresh PostgreSQL cluster.
test-django6: venv
	@if [ -z "$(PYTHON312)" ]; then echo "test-django6: skipped: no Python >= 3.12 on this machine (Django 6 needs it)"; \
	else $(MAKE) --no-print-directory venv-django6 PYTHON312=$(PYTHON312) && \
	  $(PY) tests/pgcluster.py run -- $(VENV6)/bin/python -m pytest -q $(DJANGO_TESTS); fi

# The wheel and the sdist in dist/, built from this virtualenv's setuptools (no download, no isolation).
dist: venv
	rm -rf dist build
	$(PY) -m build --no-isolation --outdir dist .

# The example app (examples/) on examples/demo.sqlite3, or DATABASE=postgresql://…, until Ctrl-C.
.PHONY: demo
demo: venv
	$(PY) examples/demo.py $(if $(DATABASE),--database '$(DATABASE)')

clean:
	rm -rf $(VENV) $(VENV6) .bench-venv .bench-venv312 build dist *.egg-info .mypy_cache .ruff_cache

# Kill -9 workers, dispatchers and a supervisor, restart PostgreSQL, while 20,000 jobs drain;
# then check nothing was lost (SPEC 9). Loopback only, its own throwaway cluster, ≤ 10 minutes.
.PHONY: chaos
chaos: venv
	$(PY) tests/chaos.py --jobs 20000 --job-seconds 0.05 --seconds 540

# Regenerate man/*.1 from the CLI and man/src/*.roff (tests fail when a page is stale).
.PHONY: man
man: venv
	$(PY) tools/genman.py

# The live monitor on the demo database (examples/demo.sqlite3), or DATABASE=postgresql://…; TOP_ARGS=--read-only
.PHONY: top
top: venv
	$(VENV)/bin/jobctl top --database '$(if $(DATABASE),$(DATABASE),sqlite:///$(CURDIR)/examples/demo.sqlite3)' $(TOP_ARGS)

# jobctl against PgQueuer, procrastinate, oban and chancy (those two on a Python >= 3.12 venv when the machine
# has one) and a bare claim/ack ceiling on a throwaway PostgreSQL, then the curves (SPEC 8, 16); never part of
# `make test`. BENCH_QUICK=1: a smoke run of a few minutes; BENCH_CURVES=0: no curves; BENCH_BIG=1: also the
# 1M-job figures. Table: bench/results/latest.md.
.PHONY: bench
bench: venv
	$(PY) bench/run.py
