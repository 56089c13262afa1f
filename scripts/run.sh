#!/usr/bin/env bash
# `make run`: the web server on 127.0.0.1:$PORT and one Celery worker; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
PORT="${PORT:-8000}"

.venv/bin/celery -A console worker --loglevel=INFO --concurrency=2 -Q celery,builds \
  >var/log/worker.log 2>&1 &
worker=$!
trap 'kill "$worker" 2>/dev/null; wait "$worker" 2>/dev/null' EXIT INT TERM
say "worker started (pid $worker, log: var/log/worker.log)"
say "console on http://127.0.0.1:$PORT/ (Ctrl-C stops it and the worker)"
.venv/bin/python manage.py runserver "127.0.0.1:$PORT"
