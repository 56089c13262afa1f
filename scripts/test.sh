#!/usr/bin/env bash
# `make test`: ruff, then the whole suite on PostgreSQL with a Redis broker.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
export DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/console}"
export CELERY_BROKER_URL="${TEST_CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}"
say "ruff"
.venv/bin/ruff check .
say "import-linter (the layering contracts in pyproject.toml)"
.venv/bin/lint-imports
say "import cycles (scripts/import_cycles.py)"
.venv/bin/python scripts/import_cycles.py
say "pytest (database $DATABASE_URL, broker $CELERY_BROKER_URL)"
# No .pytest_cache in the repository (-p no:cacheprovider, as make test-fast): a test run writes only in its data
# folder (tests/settings.py) and test-artifacts/.
exec .venv/bin/pytest -p no:cacheprovider "$@"
