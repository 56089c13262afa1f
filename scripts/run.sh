#!/usr/bin/env bash
# `make run`: the web server on 127.0.0.1:$PORT and one Celery worker; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
PORT="${PORT:-8000}"
# Logs hold deployment details: 0600 in a 0700 folder (scripts/lib.sh). No umask for the processes themselves:
# the worker writes build contexts, whose files must keep their modes in the images.
private_data_dir
private_log "$data_dir/log/worker.log"
private_log "$data_dir/log/registry.log"

# -B: the worker also runs the periodic tasks (host checks, lost builds); one worker, so one scheduler.
.venv/bin/celery -A console worker -B --schedule "$data_dir/celerybeat-schedule" --loglevel=INFO --concurrency=2 \
  -Q celery,builds >"$data_dir/log/worker.log" 2>&1 &
worker=$!
# The console's registry, when docker-registry is installed (scripts/setup.sh installs it as root).
registry=""
if command -v docker-registry >/dev/null; then
  scripts/registry.sh >"$data_dir/log/registry.log" 2>&1 &
  registry=$!
fi
trap 'kill "$worker" $registry 2>/dev/null; wait "$worker" $registry 2>/dev/null' EXIT INT TERM
say "worker started (pid $worker, log: $data_dir/log/worker.log)"
if [ -n "$registry" ]; then
  say "registry on ${REGISTRY_ADDRESS:-127.0.0.1:5000} (pid $registry, log: $data_dir/log/registry.log)"
else
  say "docker-registry is not installed (as root: apt-get install -y docker-registry): no console registry"
fi
say "console on http://127.0.0.1:$PORT/ (Ctrl-C stops it and the worker)"
.venv/bin/python manage.py runserver "127.0.0.1:$PORT"
