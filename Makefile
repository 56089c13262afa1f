# Two commands: `make run` starts the console with a worker; `make test` runs the whole suite.
# Both set up what they need first (idempotent; a second run takes seconds).
SHELL := /bin/bash

.PHONY: run test test-fast venv setup test-setup lint worker clean

run: setup
	@scripts/run.sh

test: test-setup
	@scripts/test.sh

# The inner loop (under 2 minutes): ruff and every test that needs no engine, worker, registry, browser, broker
# or PostgreSQL, on SQLite, in parallel (pytest-xdist: one process per core, each with its own database and data
# folder). An engine test that slips in fails at once: DOCKER_HOST points where nothing listens.
TEST_FAST_WORKERS ?= auto
test-fast: venv
	@.venv/bin/ruff check .
	@env -u DATABASE_URL CONSOLE_TEST_FAST=1 DOCKER_HOST=tcp://127.0.0.1:9 CELERY_BROKER_URL=memory:// \
		.venv/bin/pytest -q -p no:cacheprovider -n $(TEST_FAST_WORKERS) $(ARGS)

venv:
	@scripts/setup.sh --venv-only

setup:
	@scripts/setup.sh

test-setup: setup
	@scripts/test-services.sh

# ruff, the layering contracts of pyproject.toml [tool.importlinter] (import-linter), and no import cycle
# between any two modules (scripts/import_cycles.py; function-local imports count).
lint:
	@.venv/bin/ruff check .
	@.venv/bin/lint-imports
	@.venv/bin/python scripts/import_cycles.py

worker:
	@.venv/bin/celery -A console worker --loglevel=INFO --concurrency=2 -Q celery,builds

clean:
	rm -rf .venv var/celery var/static
