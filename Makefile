# Two commands: `make run` starts the console with a worker; `make test` runs the whole suite.
# Both set up what they need first (idempotent; a second run takes seconds).
SHELL := /bin/bash

.PHONY: run test setup test-setup lint worker clean

run: setup
	@scripts/run.sh

test: test-setup
	@scripts/test.sh

setup:
	@scripts/setup.sh

test-setup: setup
	@scripts/test-services.sh

lint:
	@.venv/bin/ruff check .

worker:
	@.venv/bin/celery -A console worker --loglevel=INFO --concurrency=2 -Q celery,builds

clean:
	rm -rf .venv var/celery var/static
