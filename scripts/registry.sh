#!/usr/bin/env bash
# The console's own registry: Debian's docker-registry (CNCF Distribution) on REGISTRY_ADDRESS
# (127.0.0.1:5000), trusting the console's token endpoint for `docker login`. Runs in the foreground;
# `make run` starts it next to the web server and the worker. Installs docker-registry as root when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
command -v docker-registry >/dev/null || apt_install docker-registry apache2-utils
# Writes config.yml (and config-readonly.yml), the token signing key and certificate under REGISTRY_DIR, then
# supervises `docker-registry serve`: read-only while a garbage collection holds its lease (registry/maintenance.py).
exec .venv/bin/python manage.py registry_serve
