"""gunicorn's settings for the console's web process (deploy/console-web.service), read from the environment."""

from __future__ import annotations

import multiprocessing
import os

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
