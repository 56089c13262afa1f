"""Settings of the console, all read from the environment (see the README's configuration table)."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from console import units
from console.env import (
    envbool,
    envint,
    envlist,
    envsecret,
    envstr,
    generated_secret,
    private_dir,
    private_file,
    random_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent
# The data folder holds the SQLite database, secrets, sources and logs: its owner's alone (0700, console/env.py).
DATA_DIR = private_dir(Path(envstr("CONSOLE_DATA_DIR", str(BASE_DIR / "var"))).resolve())

DEBUG = envbool("DEBUG", True)
# The embedded setup of `make run` (scripts/run.sh sets it): every process on one machine, sharing one data folder.
CONSOLE_EMBEDDED = envbool("CONSOLE_EMBEDDED", False)
_secret_key = envsecret("SECRET_KEY")
# A generated key is for one machine only: production runs several processes on several machines, which must share
# one key that survives a fresh data folder, so it is given, never made up. The embedded setup's processes all read
# the data folder, and the key there lives exactly as long as its database (SQLite in the same folder), so it may
# generate one even without DEBUG. A key that is given must be a real one either way.
if not DEBUG and (
    (not _secret_key and not CONSOLE_EMBEDDED)
    or (_secret_key and (len(_secret_key) < 32 or _secret_key.startswith("django-insecure-")))
):
    raise ImproperlyConfigured(
        "SECRET_KEY (or SECRET_KEY_FILE) must be set to a random value of at least 32 characters when DEBUG is false"
    )
SECRET_KEY = _secret_key or generated_secret(DATA_DIR, "secret_key", random_key)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


# The first key encrypts; every key decrypts, so keys can be rotated (manage.py rotate_encryption_keys).
CONSOLE_ENCRYPTION_KEYS = [
    key.strip()
    for key in (
        envsecret("CONSOLE_ENCRYPTION_KEYS") or generated_secret(DATA_DIR, "encryption_key", _fernet_key)
    ).split(",")
    if key.strip()
]
for _key in CONSOLE_ENCRYPTION_KEYS:
    try:
        if len(base64.urlsafe_b64decode(_key.encode())) != 32:
            raise ValueError
    except ValueError:
        raise ImproperlyConfigured(
            "CONSOLE_ENCRYPTION_KEYS holds a key that is not 32 url-safe base64-encoded bytes"
        ) from None

# The engine that runs builds; None means the local socket (or the DOCKER_HOST the docker SDK sees).
DOCKER_HOST = envstr("DOCKER_HOST", "") or None
DOCKER_TIMEOUT = envint("DOCKER_TIMEOUT", 60, minimum=1)
# How long health checks wait for a service to answer, in seconds.
HEALTH_TIMEOUT = envint("HEALTH_TIMEOUT", 3, minimum=1)
# The offline base image that `manage.py import_base_image` makes for Dockerfiles to build FROM.
CONSOLE_BASE_IMAGE = envstr("CONSOLE_BASE_IMAGE", "busybox")

# The console's own registry (CNCF Distribution) and the token service it trusts (registry/, README
# "Registries"). REGISTRY_ADDRESS is host:port as engines name it; REGISTRY_TOKEN_REALM must be reachable from
# every engine that pushes or pulls; REGISTRY_DIR holds config.yml, the signing key and certificate, the blobs.
REGISTRY_ADDRESS = envstr("REGISTRY_ADDRESS", "127.0.0.1:5000")
REGISTRY_TOKEN_REALM = envstr(
    "REGISTRY_TOKEN_REALM", f"http://127.0.0.1:{envint('PORT', 8000, minimum=1)}/registry/token/"
)
REGISTRY_SERVICE = envstr("REGISTRY_SERVICE", "console-registry")
REGISTRY_ISSUER = envstr("REGISTRY_ISSUER", "console")
REGISTRY_DIR = Path(envstr("REGISTRY_DIR", str(DATA_DIR / "registry"))).resolve()
REGISTRY_TOKEN_TTL = envint("REGISTRY_TOKEN_TTL", 300, minimum=30)
# Seconds to wait for a registry's HTTP API (tests of accounts, browsing).
REGISTRY_HTTP_TIMEOUT = envint("REGISTRY_HTTP_TIMEOUT", 10, minimum=1)
# Where the console's registry sends its notifications (every push and delete): the console's own URL, reachable
# from the registry's process; empty: next to REGISTRY_TOKEN_REALM (`.../registry/notifications/`).
REGISTRY_NOTIFICATIONS_URL = envstr("REGISTRY_NOTIFICATIONS_URL", "")

# Outbound webhooks (console/events, README "Registry lifecycle"): each attempt waits this long for an answer; a
# failed one is tried again after the base doubled each time (capped), up to the number of attempts.
WEBHOOK_TIMEOUT_SECONDS = envint("WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
WEBHOOK_RETRY_BASE_SECONDS = envint("WEBHOOK_RETRY_BASE_SECONDS", 10, minimum=1)
WEBHOOK_RETRY_MAX_SECONDS = envint("WEBHOOK_RETRY_MAX_SECONDS", 3600, minimum=1)
WEBHOOK_MAX_ATTEMPTS = envint("WEBHOOK_MAX_ATTEMPTS", 6, minimum=1)
# Seconds Distribution's garbage-collect may run (the registry is read-only meanwhile) before it is stopped.
REGISTRY_GC_TIMEOUT = envint("REGISTRY_GC_TIMEOUT", 3600, minimum=10)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "console",
    "console.accounts",
    "console.audit",
    "console.events",
    "builds",
    "builds.vulnerabilities",
    "registry",
    "fleet",
]

MIDDLEWARE = [
    # Outermost, so that every answer (redirects, CSRF failures, error pages) carries the security headers.
    "console.security.SecurityHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files straight from the app server (gunicorn in production): no separate web server needed for them.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A database that cannot be reached is a 503 with a message, not a traceback (console/views.py).
    "console.views.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database() -> dict:
    url = envstr("DATABASE_URL", f"sqlite:///{DATA_DIR / 'console.sqlite3'}")
    try:
        config = dj_database_url.parse(url, conn_max_age=envint("DATABASE_CONN_MAX_AGE", 0, minimum=0))
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is malformed: {exc}") from None
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # Web server, worker processes and a deployment's host threads share the file. WAL: readers never block
        # the writer nor it them. IMMEDIATE: a transaction takes the write lock at BEGIN, where SQLite waits out
        # `timeout` (seconds) for it; a deferred one that reads first and then writes fails at once with
        # "database is locked" when another writer got in between. NORMAL is durable enough under WAL.
        config.setdefault("OPTIONS", {}).update({
            "timeout": 20, "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        })
        name = str(config.get("NAME") or "")
        if name and name != ":memory:" and not name.startswith("file:") and Path(name).parent.is_dir():
            # Made (or tightened) 0600 before SQLite opens it: SQLite would make it 0644, and it gives its -wal and
            # -shm files the database's own mode. Those an older, laxer version left are tightened too.
            private_file(Path(name))
            for companion in (Path(f"{name}-wal"), Path(f"{name}-shm")):
                if companion.exists():
                    private_file(companion)
    if config["ENGINE"] == "django.db.backends.postgresql":
        config.setdefault("OPTIONS", {})["connect_timeout"] = HEALTH_TIMEOUT
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Usernames sign in without regard to case or Unicode compatibility forms, as sign-up keeps them unique
# (console/accounts/usernames.py).
AUTHENTICATION_BACKENDS = ["console.accounts.backends.UsernameBackend"]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"

# Security (README "Security"). console/security.py adds the CSP and the other headers to every answer.
# Without DEBUG the console assumes HTTPS in front of it: cookies travel only over HTTPS.
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", not DEBUG)
# A form the CSRF check refuses (left open too long, from another site) gets the console's 403 page.
CSRF_FAILURE_VIEW = "console.views.csrf_failure"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
# Load balancers probe /healthz over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Opt-in, only behind a proxy that sets this header itself (e.g. X-Forwarded-Proto): otherwise clients could fake it.
_proxy_ssl_header = envstr("SECURE_PROXY_SSL_HEADER", "").strip()
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)
# How many proxies of ours append to X-Forwarded-For; 0 means clients connect directly and REMOTE_ADDR is theirs.
TRUSTED_PROXY_COUNT = envint("TRUSTED_PROXY_COUNT", 0, minimum=0)

# Login throttling (console/throttle.py): failures are counted per (username, address), per username and per address.
# Failures of one username from one address before it is locked from that address (others may still sign in to it).
LOGIN_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5, minimum=1)
# Failures of one username from all addresses together before it is locked from everywhere (spread-out guessing).
LOGIN_USERNAME_FAILURE_LIMIT = envint("LOGIN_USERNAME_FAILURE_LIMIT", 20, minimum=1)
# Different usernames one address may fail on before the address is locked (password spraying): high, so that an
# office behind one address is not locked out by its own typos.
LOGIN_ADDRESS_FAILURE_LIMIT = envint("LOGIN_ADDRESS_FAILURE_LIMIT", 30, minimum=1)
LOGIN_FAILURE_WINDOW = envint("LOGIN_FAILURE_WINDOW", 15 * 60, minimum=1)
LOGIN_LOCK_SECONDS = envint("LOGIN_LOCK_SECONDS", 15 * 60, minimum=1)
# From this many failures on, each further attempt waits 1, 2, 4... seconds before it is even checked.
LOGIN_SLOWDOWN_AFTER = envint("LOGIN_SLOWDOWN_AFTER", 3, minimum=1)


def _caches() -> dict:
    """The cache every web process and worker shares (the login throttle lives in it): a table in the database by
    default, so that several processes on several machines see the same counters; Redis when CACHE_URL says so."""
    url = envstr("CACHE_URL", "db://").strip()
    if url.startswith(("redis://", "rediss://")):
        options = {"socket_connect_timeout": HEALTH_TIMEOUT, "socket_timeout": HEALTH_TIMEOUT}
        backend = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url, "OPTIONS": options}
    elif url == "db://":
        # The table is made by a migration (console/audit/migrations), so `migrate` is enough.
        backend = {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "console_cache"}
    elif url == "locmem://":
        # One process only: fine for a single test process, wrong for web servers with workers.
        backend = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    else:
        raise ImproperlyConfigured(f"CACHE_URL={url!r} is not supported: use db:// or redis://host:port/db")
    return {"default": {**backend, "KEY_PREFIX": "console"}}


CACHES = _caches()

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Sources are read by every build worker: a shared folder by default; any Django storage backend
# (an S3-compatible one, say) can take its place by naming it in CONSOLE_SOURCE_STORAGE_BACKEND.
SOURCES_DIR = Path(envstr("CONSOLE_SOURCES_DIR", str(DATA_DIR / "sources")))
_source_backend = envstr("CONSOLE_SOURCE_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage")
if _source_backend == "django.core.files.storage.FileSystemStorage":
    _source_options = {"location": SOURCES_DIR, "file_permissions_mode": 0o600, "directory_permissions_mode": 0o700}
else:
    # Another backend takes its own options (bucket, endpoint...) as a JSON object; credentials stay in its own
    # variables (AWS_ACCESS_KEY_ID... for an S3-compatible one), never in this setting.
    try:
        _source_options = json.loads(envstr("CONSOLE_SOURCE_STORAGE_OPTIONS", "{}"))
        if not isinstance(_source_options, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        raise ImproperlyConfigured(f"CONSOLE_SOURCE_STORAGE_OPTIONS must be a JSON object: {exc}") from None
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": DATA_DIR / "media"}},
    # Production serves collected, compressed files with hashed names (manage.py collectstatic first); development
    # serves them from the app folders as they are.
    "staticfiles": {"BACKEND": envstr(
        "STATICFILES_BACKEND",
        "django.contrib.staticfiles.storage.StaticFilesStorage" if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage",
    )},
    "sources": {"BACKEND": _source_backend, "OPTIONS": _source_options},
}
# Uploads larger than Django's in-memory limit are spooled here, inside the data folder.
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "tmp")
os.makedirs(FILE_UPLOAD_TEMP_DIR, exist_ok=True)

# Limits on uploaded archives (see builds/sources/archives.py).
CONSOLE_MAX_UPLOAD_BYTES = envint("CONSOLE_MAX_UPLOAD_BYTES", 1024**3, minimum=1)
CONSOLE_MAX_UNPACKED_BYTES = envint("CONSOLE_MAX_UNPACKED_BYTES", 4 * 1024**3, minimum=1)
CONSOLE_MAX_ARCHIVE_MEMBERS = envint("CONSOLE_MAX_ARCHIVE_MEMBERS", 200_000, minimum=1)
CONSOLE_MAX_COMPRESSION_RATIO = envint("CONSOLE_MAX_COMPRESSION_RATIO", 200, minimum=1)
CONSOLE_COMPRESSION_RATIO_FLOOR_BYTES = envint("CONSOLE_COMPRESSION_RATIO_FLOOR_BYTES", 1024**2, minimum=0)
# Vulnerability data imports (builds/vulnerabilities/osv.py): an uploaded OSV zip waits in its folder (which every
# worker reads, as the sources') until its run ends; a folder import reads only inside VULNERABILITY_IMPORT_ROOTS
# (absolute paths, comma-separated; empty turns folder imports off). Limits hold for staff's data too.
VULNERABILITY_UPLOADS_DIR = Path(envstr("VULNERABILITY_UPLOADS_DIR", str(DATA_DIR / "vulnerability-uploads")))
VULNERABILITY_IMPORT_ROOTS = envlist("VULNERABILITY_IMPORT_ROOTS", [str(DATA_DIR / "osv")])
VULNERABILITY_IMPORT_MAX_UPLOAD_BYTES = envint("VULNERABILITY_IMPORT_MAX_UPLOAD_BYTES", 1024**3, minimum=1)
VULNERABILITY_IMPORT_MAX_TOTAL_BYTES = envint("VULNERABILITY_IMPORT_MAX_TOTAL_BYTES", 4 * 1024**3, minimum=1)
VULNERABILITY_IMPORT_MAX_RECORD_BYTES = envint("VULNERABILITY_IMPORT_MAX_RECORD_BYTES", 16 * 1024**2, minimum=1)
VULNERABILITY_IMPORT_MAX_MEMBERS = envint("VULNERABILITY_IMPORT_MAX_MEMBERS", 1_000_000, minimum=1)
VULNERABILITY_IMPORT_MAX_RECORDS = envint("VULNERABILITY_IMPORT_MAX_RECORDS", 500_000, minimum=1)
VULNERABILITY_IMPORT_MAX_RATIO = envint("VULNERABILITY_IMPORT_MAX_RATIO", 200, minimum=1)
VULNERABILITY_IMPORT_RATIO_FLOOR_BYTES = envint("VULNERABILITY_IMPORT_RATIO_FLOOR_BYTES", 1024**2, minimum=0)
# At most this share of an import's records may be JSON that is not a readable OSV record (skipped, logged).
VULNERABILITY_IMPORT_MAX_INVALID_PERCENT = envint("VULNERABILITY_IMPORT_MAX_INVALID_PERCENT", 1, minimum=0)
VULNERABILITY_IMPORT_MAX_INVALID_FRACTION = min(VULNERABILITY_IMPORT_MAX_INVALID_PERCENT, 100) / 100
# An import runs in one transaction; its worker sends heartbeats, and one silent for this long is reaped.
VULNERABILITY_IMPORT_TIMEOUT = envint("VULNERABILITY_IMPORT_TIMEOUT", 3600, minimum=60)
# Context warnings: a context larger than this is called out before it is sent.
CONSOLE_CONTEXT_WARN_BYTES = envint("CONSOLE_CONTEXT_WARN_BYTES", 100 * 1024**2, minimum=1)
GIT_TIMEOUT = envint("GIT_TIMEOUT", 300, minimum=1)

# Outbound connections on a user's behalf (console/netpolicy.py): loopback, link-local, this machine's own
# addresses and the console's own services are refused for non-staff users, except in these networks (CIDRs), which
# an operator opens on purpose (for example a registry on 127.0.0.1 that every user may push to).
OUTBOUND_ALLOWED_NETWORKS = envlist("OUTBOUND_ALLOWED_NETWORKS", [])
for _network in OUTBOUND_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"OUTBOUND_ALLOWED_NETWORKS: {_network!r} is not a network ({_exc})") from None
# git clones of file:// URLs read the console's own disk: off unless an operator turns them on (staff always may).
GIT_ALLOW_FILE_URLS = envbool("GIT_ALLOW_FILE_URLS", False)

# Builds (builds/services/builds.py, builds/runner/).
BUILDS_PER_USER = envint("BUILDS_PER_USER", 2, minimum=1)
# A running build whose worker sent no heartbeat for this long is failed as "worker lost".
BUILD_HEARTBEAT_TIMEOUT = envint("BUILD_HEARTBEAT_TIMEOUT", 60, minimum=5)
BUILD_DEFAULT_TIMEOUT = envint("BUILD_DEFAULT_TIMEOUT", 3600, minimum=10)
DEBUG_COMMAND_TIMEOUT = envint("DEBUG_COMMAND_TIMEOUT", 30, minimum=1)
# The build farm (builds/services/nodes.py, README "Build farm"): a worker started with BUILD_NODE_NAME registers
# its engine (DOCKER_HOST) as a build node with its own queue, builds.<name> unless BUILD_NODE_QUEUE says otherwise.
BUILD_NODE_NAME = envstr("BUILD_NODE_NAME", "")
BUILD_NODE_QUEUE = envstr("BUILD_NODE_QUEUE", "")
# Builds the node takes at once; 0 means the worker's concurrency.
BUILD_NODE_CAPACITY = envint("BUILD_NODE_CAPACITY", 0, minimum=0)
BUILD_NODE_HEARTBEAT_INTERVAL = envint("BUILD_NODE_HEARTBEAT_INTERVAL", 10, minimum=1)
# A node whose worker sent no heartbeat for this long is down: its queued builds move, its running ones fail.
BUILD_NODE_TIMEOUT = envint("BUILD_NODE_TIMEOUT", 45, minimum=2)
# A build whose repository's last node is full waits this long for a place there (its layer cache) before it
# goes to another node.
BUILD_AFFINITY_WAIT = envint("BUILD_AFFINITY_WAIT", 60, minimum=0)
# BuildKit builds on a farm node share their cache through the console's registry (builds/sharedcache.py): they
# export it inline and import it from the repository's last image there, so that another node hits it too. Every
# node's engine must reach REGISTRY_ADDRESS (README "Build farm"); the single-engine default has nobody to share with.
BUILD_CACHE_SHARING = envbool("BUILD_CACHE_SHARING", True)
DEBUG_COMMAND_MEMORY = envstr("DEBUG_COMMAND_MEMORY", "256m")
# An image's layer-file analysis queued or running longer than this is failed (its worker was lost).
IMAGE_ANALYSIS_TIMEOUT = envint("IMAGE_ANALYSIS_TIMEOUT", 3600, minimum=60)

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(envstr("STATIC_ROOT", str(DATA_DIR / "static")))
# whitenoise reads this folder at start-up (and warns when it is missing): collectstatic fills it in production.
os.makedirs(STATIC_ROOT, exist_ok=True)

# Celery: the embedded default is the filesystem broker under the data folder, production uses Redis.
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = DATA_DIR / "celery" / "queue"
    _processed_dir = DATA_DIR / "celery" / "processed"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        "store_processed": False,
        # Its broadcast tables (worker control, `celery inspect`): kombu's default is ./control, the working folder.
        "control_folder": str(DATA_DIR / "celery" / "control"),
        # How often an idle worker looks in the queue folder (kombu's default: each second). A listing of a small
        # folder costs nothing; a second's wait before each build and deployment starts is what a user sees.
        "polling_interval": 0.1,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": HEALTH_TIMEOUT, "socket_timeout": 10}
CELERY_TASK_IGNORE_RESULT = True
# The periodic tasks' schedule (`celery beat`, or a worker's -B) in the data folder: Celery's default is
# ./celerybeat-schedule, the working folder, which a second console on the machine would share.
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# Builds go to workers bound to a build engine; everything else to the default queue.
CELERY_TASK_DEFAULT_QUEUE = envstr("CELERY_DEFAULT_QUEUE", "celery")
BUILDS_QUEUE = envstr("BUILDS_QUEUE", "builds")
# A build placed on a node goes to that node's queue (builds/services/builds.py); the routers send the analysis
# (builds) and the push (registry) of an image to the queue of the node that holds it.
CELERY_TASK_ROUTES = ("builds.services.nodes.route_task", "registry.routing.route_task",
                      {"builds.run_build": {"queue": BUILDS_QUEUE}})
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

REST_FRAMEWORK = {
    # Token first, so that an anonymous API request is answered 401 with a WWW-Authenticate header.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "console.accounts.authentication.AccessTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "console.pagination.ConsolePagination",
    "EXCEPTION_HANDLER": "console.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "console API",
    "DESCRIPTION": "Sources, builds, images, registries and a fleet of Docker hosts.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/docs/ serves Swagger UI from drf-spectacular-sidecar's static files: nothing from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No validator badge: it would load an image from validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "COMPONENT_SPLIT_REQUEST": True,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Standard output: systemd's journal (or any process supervisor) collects it; no log files to rotate.
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stdout"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
}


# Limits on what a user's input may cost (README "Security"): anyone may sign up, so each of these bounds what one
# account can make a web process or an engine spend.
def _cpus(name: str, default: str) -> float:
    """A number of CPUs (0.5, 2): what `docker run --cpus` takes."""
    raw = envstr(name, default)
    try:
        value = units.parse_cpus(raw)
    except units.UnitError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number of CPUs (such as 0.5).") from None
    if not 0.01 <= value <= 1024:
        raise ImproperlyConfigured(f"{name}={raw!r} is out of range: use 0.01 to 1024 CPUs.")
    return value


# Debug commands (a failed build's "debug" box) one user may have running at once, across all web processes.
DEBUG_COMMANDS_PER_USER = envint("DEBUG_COMMANDS_PER_USER", 1, minimum=1)
# The CPU share of a debug command's container (docker run --cpus), on top of DEBUG_COMMAND_MEMORY and its pids limit.
DEBUG_COMMAND_CPUS = _cpus("DEBUG_COMMAND_CPUS", "0.5")
# The memory limit of a classic-builder build that sets none (memory_limit empty); "" for no limit. BuildKit in
# the engine enforces no per-build limit: limit the build engine itself (README "Builds").
BUILD_DEFAULT_MEMORY = envstr("BUILD_DEFAULT_MEMORY", "2g")
# The Docker CLI that drives BuildKit builds ("" finds one: `docker buildx`, else Debian's /usr/bin/docker 20.10,
# console/engine/buildkit.py); a path, or a path and `buildx`.
DOCKER_CLI = envstr("DOCKER_CLI", "")
