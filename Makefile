# Two commands: `make run` starts the console with a worker; `make test` runs the whole suite.
# Both set up what they need first (idempotent; a second run takes seconds).
SHELL := /bin/bash

.PHONY: run test test-fast venv setup test-setup lint worker clean

# A taken port or a data folder another console uses fails at once, before the set-up (scripts/run.sh --preflight).
run:
	@scripts/run.sh --preflight
	@scripts/setup.sh
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

# The virtual environment, and the broker folders and static files of the data folder (CONSOLE_DATA_DIR), which the
# next start makes again; its database, secrets, sources and registry stay.
clean:
	rm -rf .venv "$${CONSOLE_DATA_DIR:-var}/celery" "$${CONSOLE_DATA_DIR:-var}/static"
