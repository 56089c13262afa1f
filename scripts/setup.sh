#!/usr/bin/env bash
# Idempotent set-up shared by `make run` and `make test`: Python environment, a Docker Engine, the offline
# base image, migrations.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
private_data_dir

# Python: a virtual environment with the pinned dependencies; reinstalled only when pyproject.toml changes.
command -v python3 >/dev/null || apt_install python3 python3-venv
if [ ! -x .venv/bin/python ]; then
  say "creating the virtual environment in .venv"
  python3 -m venv .venv || { apt_install python3-venv && python3 -m venv .venv; }
fi
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
  say "installing Python dependencies"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".[test]"
  touch .venv/.installed
fi
# `make test-fast` needs the Python environment only.
[ "${1:-}" = "--venv-only" ] && exit 0

# The Docker Engine: use the one that answers, else install Debian's docker.io and start dockerd.
engine_answers() { timeout 10 docker version >/dev/null 2>&1; }
# The CLI is the reference the tests and benchmarks compare against; docker.io brings it and the engine.
command -v docker >/dev/null || apt_install docker.io
# BuildKit builds need a CLI with a BuildKit client: buildx, or Debian's CLI 20.10 at /usr/bin/docker (without one
# every build runs on the classic builder, and says why).
docker buildx version >/dev/null 2>&1 || [ -x /usr/bin/docker ] || apt_install docker.io
if ! engine_answers; then
  if [ -n "${DOCKER_HOST:-}" ]; then
    die "the Docker Engine at DOCKER_HOST=$DOCKER_HOST does not answer; start it or unset DOCKER_HOST"
  fi
  is_root || die "no Docker Engine answers on /var/run/docker.sock; start one (as root: dockerd &)"
  command -v dockerd >/dev/null || apt_install docker.io
  say "starting dockerd (log: $data_dir/log/dockerd.log)"
  private_log "$data_dir/log/dockerd.log"
  setsid dockerd >>"$data_dir/log/dockerd.log" 2>&1 < /dev/null &
  for _ in $(seq 1 60); do engine_answers && break; sleep 0.5; done
  engine_answers || die "dockerd did not start; see $data_dir/log/dockerd.log"
fi

# The offline base image needs Debian's static busybox.
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || apt_install busybox-static

# The console's own registry (make run starts it) and htpasswd for the registry tests: Debian's packages.
if ! command -v docker-registry >/dev/null || ! command -v htpasswd >/dev/null; then
  if is_root; then
    apt_install docker-registry apache2-utils
  else
    say "docker-registry or htpasswd missing; as root: apt-get install -y docker-registry apache2-utils"
  fi
fi

say "migrating the database"
# The SQLite database and its journals are made 0600 (console/settings.py makes the file first as well).
(umask 077 && .venv/bin/python manage.py migrate --no-input -v0)
.venv/bin/python manage.py import_base_image
