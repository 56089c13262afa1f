#!/usr/bin/env bash
# `make run`: the web server on 127.0.0.1:$PORT, one Celery worker and the console's registry on
# $REGISTRY_ADDRESS; Ctrl-C stops them all. It refuses to start when a port is taken, says which process stopped
# when one exits during start-up, and announces each only once it answers. Everything they write is in the data
# folder (CONSOLE_DATA_DIR, var/ by default), so a second console with its own folder and ports runs beside the
# first (README "make run"). `run.sh --preflight` only checks the ports and the data folder: `make run` asks it
# before the set-up, so that a taken port fails at once.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
# gunicorn.conf.py and the registry's token realm (console/settings.py) read PORT from the environment.
export PORT="${PORT:-8000}"
# The same default as the REGISTRY_ADDRESS setting.
registry_address="${REGISTRY_ADDRESS:-127.0.0.1:5000}"
# The embedded default serves as production does (gunicorn, DEBUG off, whitenoise's hashed static files), over
# plain http on 127.0.0.1: the cookies cannot be Secure there, or the browser would never send them back, and the
# secret key is the one generated into the data folder (console/settings.py, CONSOLE_EMBEDDED). What the caller
# set wins: `DEBUG=true make run` keeps Django's development server, an HTTPS proxy in front may set the cookies
# Secure again.
export DEBUG="${DEBUG:-false}" CONSOLE_EMBEDDED="${CONSOLE_EMBEDDED:-true}"
export SESSION_COOKIE_SECURE="${SESSION_COOKIE_SECURE:-false}" CSRF_COOKIE_SECURE="${CSRF_COOKIE_SECURE:-false}"
debug=""
case "${DEBUG,,}" in 1|true|yes|on) debug=1 ;; esac
# The console's registry, when docker-registry is installed (scripts/setup.sh installs it as root).
with_registry=""
command -v docker-registry >/dev/null && with_registry=1
# Seconds each process has to answer before the start counts as failed.
start_timeout=120

# Before anything starts: this data folder is no other console's, and the ports are free (scripts/ports.py names
# what holds one). Before the set-up the virtual environment may not exist yet: any python3 will do, and without
# one the check waits for the run after the set-up.
check_ports() {
  local python=.venv/bin/python
  [ -x "$python" ] || python=$(command -v python3) || return 0
  local checks=(--check PORT "$PORT" "the web server")
  [ -n "$with_registry" ] && checks+=(--check REGISTRY_ADDRESS "$registry_address" "the console's registry")
  "$python" scripts/ports.py "${checks[@]}" || exit 1
}
private_data_dir
lock_data_dir
check_ports
[ "${1:-}" = "--preflight" ] && exit 0
say "data folder: $data_dir (database, secrets, broker, logs, registry, sockets)"

# Logs hold deployment details: 0600 in a 0700 folder (scripts/lib.sh). No umask for the processes themselves:
# the worker writes build contexts, whose files must keep their modes in the images.
private_log "$data_dir/log/worker.log"
private_log "$data_dir/log/registry.log"

# The manifest of hashed names that whitenoise's storage needs without DEBUG; unchanged files are skipped. First,
# so that what starts next starts at once.
if [ -z "$debug" ]; then
  say "collecting static files into ${STATIC_ROOT:-$data_dir/static}"
  .venv/bin/python manage.py collectstatic --no-input -v0
fi

declare -A pid=() what=() log=()
stop_all() {
  # Stop them all whatever fails on the way (set -e would leave the rest running).
  set +e
  local name
  # Django's development server serves from a child of its reloader, which the reloader does not stop when it is
  # stopped: that child first, while it still is the reloader's.
  [ -n "$debug" ] && [ -n "${pid[web]:-}" ] && pkill -TERM -P "${pid[web]}"
  for name in "${!pid[@]}"; do
    kill "${pid[$name]}" 2>/dev/null
  done
  wait "${pid[@]}" 2>/dev/null
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
started() { pid[$1]=$2 what[$1]=$3 log[$1]=$4; }

if [ -n "$debug" ]; then server="Django's development server, DEBUG on"; else server="gunicorn, DEBUG off"; fi
say "starting the worker${with_registry:+, the registry} and the web server ($server)"
# -B: the worker also runs the periodic tasks (host checks, lost builds); one worker, so one scheduler. Its schedule
# and the broker's folders are in the data folder (console/settings.py).
.venv/bin/celery -A console worker -B --loglevel=INFO --concurrency=2 -Q celery,builds \
  >"$data_dir/log/worker.log" 2>&1 &
started worker $! "worker" "$data_dir/log/worker.log"
if [ -n "$with_registry" ]; then
  scripts/registry.sh >"$data_dir/log/registry.log" 2>&1 &
  started registry $! "registry" "$data_dir/log/registry.log"
else
  say "docker-registry is not installed (as root: apt-get install -y docker-registry): no console registry"
fi
if [ -n "$debug" ]; then
  .venv/bin/python manage.py runserver "127.0.0.1:$PORT" &
else
  # One machine, a few users: two processes (WEB_CONCURRENCY) rather than gunicorn.conf.py's two per core plus one.
  # Its control socket is in the data folder (deploy/gunicorn.conf.py).
  WEB_CONCURRENCY="${WEB_CONCURRENCY:-2}" HOST=127.0.0.1 .venv/bin/gunicorn -c deploy/gunicorn.conf.py console.wsgi &
fi
started web $! "web server" "standard output, above"

# host:port as a client reaches it: a server on every address answers on 127.0.0.1.
reachable() {
  local host=${1%:*} port=${1##*:}
  host=${host#[} host=${host%]}
  case "$host" in ""|0.0.0.0|::) host=127.0.0.1 ;; esac
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}
ready() {
  case $1 in
    worker) grep -q 'celery@.* ready\.' "${log[worker]}" ;;
    registry) reachable "$registry_address" ;;
    web) reachable "127.0.0.1:$PORT" ;;
  esac
}
announce() {
  case $1 in
    worker) say "worker ready (pid ${pid[worker]}, log: ${log[worker]})" ;;
    registry) say "registry on $registry_address (pid ${pid[registry]}, log: ${log[registry]})" ;;
    web) say "console on http://127.0.0.1:$PORT/ ($server; Ctrl-C stops everything)" ;;
  esac
}
# The end of its log, then why the console stops.
stopped() {
  local name=$1 status=$2 how=$3
  unset "pid[$name]"
  [ "$name" = web ] || tail -n 20 "${log[$name]}" >&2
  die "the ${what[$name]} $how (exit status $status; log: ${log[$name]}): the console is stopped"
}

# Each is announced once it answers, the console's address last, once everything behind it answers too; one that
# exits first stops the start, with the end of its log.
pending=()
for name in worker registry web; do
  [ -n "${pid[$name]:-}" ] && pending+=("$name")
done
deadline=$((SECONDS + start_timeout))
while [ ${#pending[@]} -gt 0 ]; do
  waiting=()
  for name in "${pending[@]}"; do
    if ! kill -0 "${pid[$name]}" 2>/dev/null; then
      status=0
      wait "${pid[$name]}" || status=$?
      stopped "$name" "$status" "exited during start-up"
    elif { [ "$name" != web ] || [ ${#waiting[@]} -eq 0 ]; } && ready "$name"; then
      announce "$name"
    else
      waiting+=("$name")
    fi
  done
  pending=("${waiting[@]}")
  if [ ${#pending[@]} -gt 0 ]; then
    if [ $SECONDS -ge $deadline ]; then
      name=${pending[0]}
      die "the ${what[$name]} did not answer within ${start_timeout}s (log: ${log[$name]}): the console is stopped"
    fi
    sleep 0.2
  fi
done

# From here on, one that stops stops the console: a console without its worker or registry would go on saying it
# serves what it cannot.
status=0
wait -n -p gone "${pid[@]}" || status=$?
for name in "${!pid[@]}"; do
  [ "${pid[$name]}" = "$gone" ] && stopped "$name" "$status" "stopped"
done
