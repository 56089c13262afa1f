#!/usr/bin/env bash
# What the tests need besides `scripts/setup.sh`: PostgreSQL, Redis, Chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

pg_answers() { timeout 5 bash -c '</dev/tcp/127.0.0.1/5432' 2>/dev/null; }
redis_answers() { timeout 5 bash -c '</dev/tcp/127.0.0.1/6379' 2>/dev/null; }

if ! pg_answers; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  version=$(ls /etc/postgresql | sort -V | tail -1)
  say "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_answers && break; sleep 0.5; done
  pg_answers || die "PostgreSQL does not answer on 127.0.0.1:5432"
fi
if ! redis_answers; then
  command -v redis-server >/dev/null || apt_install redis-server
  say "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 30); do redis_answers && break; sleep 0.2; done
  redis_answers || die "Redis does not answer on 127.0.0.1:6379"
fi
command -v chromium >/dev/null || apt_install chromium
# The fleet tests run extra dockerd engines in network namespaces (tests/fixtures/fleet.py): `ip` and `nsenter`.
command -v ip >/dev/null || apt_install iproute2
command -v nsenter >/dev/null || apt_install util-linux
# The registry tests run real Distribution servers, with htpasswd files for Basic auth.
command -v docker-registry >/dev/null || apt_install docker-registry
command -v htpasswd >/dev/null || apt_install apache2-utils
# The ssh:// host tests run a real OpenSSH sshd in a fleet host's namespace (tests/fixtures/fleet.py).
[ -x /usr/sbin/sshd ] || apt_install openssh-server
# The package tests import a real Debian made by mmdebstrap (tests/builds/test_packages_engine.py).
command -v mmdebstrap >/dev/null || apt_install mmdebstrap
