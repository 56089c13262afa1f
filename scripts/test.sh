#!/usr/bin/env bash
# `make test`: ruff and the layering checks, then the whole suite on PostgreSQL with a Redis broker.
#
# The suite runs in two phases. First every test but the `serial` ones, in TEST_WORKERS processes (pytest-xdist,
# whole modules per process, so a module's engines, swarms and registries are made once): most of the real-component
# tests wait (on a rollout, a token's expiry, a container's health check), and the other process works meanwhile.
# Each process has its own test database (test_console_gw0, ...), data folder (tests/settings.py), fleet subnet
# (tests/fixtures/fleet.py) and Celery queues (tests/fixtures/worker.py). Then the `serial` tests in one process:
# Schemathesis' generated cases share one node id, which pytest-xdist cannot schedule apart.
# Arguments (a module, -k, ...) run just those, in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
export DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/console}"
export CELERY_BROKER_URL="${TEST_CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}"
TEST_WORKERS="${TEST_WORKERS:-2}"
say "ruff"
.venv/bin/ruff check .
say "import-linter (the layering contracts in pyproject.toml)"
.venv/bin/lint-imports
say "import cycles (scripts/import_cycles.py)"
.venv/bin/python scripts/import_cycles.py
# No .pytest_cache in the repository (-p no:cacheprovider, as make test-fast): a test run writes only in its data
# folder (tests/settings.py) and test-artifacts/.
if [ "$#" -gt 0 ]; then
    say "pytest $* (database $DATABASE_URL, broker $CELERY_BROKER_URL)"
    exec .venv/bin/pytest -p no:cacheprovider "$@"
fi
say "pytest, all but the serial tests, in $TEST_WORKERS processes (database $DATABASE_URL, broker $CELERY_BROKER_URL)"
status=0
.venv/bin/pytest -p no:cacheprovider -n "$TEST_WORKERS" --dist loadfile -m "not serial" || status=$?
say "pytest, the serial tests, in one process"
.venv/bin/pytest -p no:cacheprovider -m serial || status=$?
exit "$status"
