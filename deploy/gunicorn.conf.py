"""gunicorn's settings for the console's web process (deploy/console-web.service), read from the environment."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# Requests wait on the database and on engines: a few processes per core, each with a few threads.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("WEB_THREADS", "4"))
# Build logs are followed by polling, and uploads of big sources take a while on slow links.
timeout = int(os.environ.get("WEB_TIMEOUT", "120"))
graceful_timeout = 30
# Load the app in the master: a configuration error (no SECRET_KEY, a malformed DATABASE_URL) stops the start at
# once instead of workers failing to boot over and over.
preload_app = True
# Logs to standard output and error, for the journal; the access log leaves out query strings' secrets by format.
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss'
# Behind a reverse proxy on the same machine: trust its X-Forwarded-* headers (set FORWARDED_ALLOW_IPS otherwise).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Its control socket (gunicornc) in the instance's data folder, as console/settings.py finds it: gunicorn's default,
# ~/.gunicorn/gunicorn.ctl, is one per user, and a second console on the machine would take it over from the first.
# A socket's path holds at most 107 bytes: a longer one goes without rather than back to the shared default.
_data_dir = Path(os.environ.get("CONSOLE_DATA_DIR") or Path(__file__).resolve().parent.parent / "var").resolve()
control_socket = str(_data_dir / "run" / "gunicorn.ctl")
control_socket_disable = len(os.fsencode(control_socket)) > 107
