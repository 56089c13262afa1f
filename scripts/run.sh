#!/usr/bin/env bash
# `make run`: the web server on 127.0.0.1:$PORT and one Celery worker; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
# gunicorn.conf.py and the registry's token realm (console/settings.py) read PORT from the environment.
export PORT="${PORT:-8000}"
# The embedded default serves as production does (gunicorn, DEBUG off, whitenoise's hashed static files), over
# plain http on 127.0.0.1: the cookies cannot be Secure there, or the browser would never send them back, and the
# secret key is the one generated into the data folder (console/settings.py, CONSOLE_EMBEDDED). What the caller
# set wins: `DEBUG=true make run` keeps Django's development server, an HTTPS proxy in front may set the cookies
# Secure again.
export DEBUG="${DEBUG:-false}" CONSOLE_EMBEDDED="${CONSOLE_EMBEDDED:-true}"
export SESSION_COOKIE_SECURE="${SESSION_COOKIE_SECURE:-false}" CSRF_COOKIE_SECURE="${CSRF_COOKIE_SECURE:-false}"
debug=""
case "${DEBUG,,}" in 1|true|yes|on) debug=1 ;; esac
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
if [ -n "$debug" ]; then
  say "console on http://127.0.0.1:$PORT/ (Django's development server, DEBUG on; Ctrl-C stops it and the worker)"
  .venv/bin/python manage.py runserver "127.0.0.1:$PORT"
else
  # The manifest of hashed names that whitenoise's storage needs without DEBUG; unchanged files are skipped.
  say "collecting static files into ${STATIC_ROOT:-$data_dir/static}"
  .venv/bin/python manage.py collectstatic --no-input -v0
  say "console on http://127.0.0.1:$PORT/ (gunicorn, DEBUG off; Ctrl-C stops it and the worker)"
  # One machine, a few users: two processes (WEB_CONCURRENCY) rather than gunicorn.conf.py's two per core plus one.
  WEB_CONCURRENCY="${WEB_CONCURRENCY:-2}" HOST=127.0.0.1 .venv/bin/gunicorn -c deploy/gunicorn.conf.py console.wsgi
fi
