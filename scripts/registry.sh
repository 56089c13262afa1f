#!/usr/bin/env bash
# The console's own registry: Debian's docker-registry (CNCF Distribution) on REGISTRY_ADDRESS
# (127.0.0.1:5000), trusting the console's token endpoint for `docker login`. Runs in the foreground;
# `make run` starts it next to the web server and the worker. Installs docker-registry as root when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
command -v docker-registry >/dev/null || apt_install docker-registry apache2-utils
# The same folder as the REGISTRY_DIR setting: config.yml, the token signing key and certificate, the blobs.
dir="${REGISTRY_DIR:-${CONSOLE_DATA_DIR:-var}/registry}"
.venv/bin/python manage.py registry_config
exec docker-registry serve "$dir/config.yml"
