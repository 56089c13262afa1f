"""Test settings: the console's own, with its data folder in a fresh temporary folder (removed at the end of
the run by tests/conftest.py), plus a small app with a concrete job for the lifecycle tests."""

import os
import tempfile

# Set before the console's settings are read, and inherited by the workers the tests start.
os.environ["CONSOLE_DATA_DIR"] = os.environ.get("CONSOLE_TEST_DATA_DIR") or tempfile.mkdtemp(prefix="console-test-")
os.environ["CONSOLE_TEST_DATA_DIR"] = os.environ["CONSOLE_DATA_DIR"]
# Each pytest-xdist worker (make test-fast) has its own database, so its own data folder too: two workers' rows
# with the same id must not share files. They sit inside the run's folder, which the controller removes.
if os.environ.get("PYTEST_XDIST_WORKER"):
    _run_folder = os.environ["CONSOLE_TEST_DATA_DIR"]
    os.environ["CONSOLE_DATA_DIR"] = os.path.join(_run_folder, os.environ["PYTEST_XDIST_WORKER"])
    os.makedirs(os.environ["CONSOLE_DATA_DIR"], exist_ok=True)

# Hypothesis keeps its caches and examples in the data folder too, not in .hypothesis/ of the working folder (the
# repository): a test run writes nothing there.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(os.environ["CONSOLE_DATA_DIR"], "hypothesis"))

from console.settings import *  # noqa: E402, F403
from console.settings import INSTALLED_APPS  # noqa: E402

INSTALLED_APPS = [*INSTALLED_APPS, "tests.jobapp"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The test components (registries, engines, sshd) listen on loopback and on the test fleets' 10.203.x.0/24 gateways,
# which are this machine's own addresses: an operator's allowance, as console/netpolicy.py reads it. The tenancy
# tests (tests/security/) set it back to the production default, [].
OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128", "10.203.0.0/16"]

# SQLite (the fast tier): the test database is a file in the run's data folder, not Django's shared-cache
# in-memory default, whose table locks fail at once whatever the busy timeout: threads that write at once (a
# deployment's hosts, racing workers) wait for each other here as they do on `make run`'s file (WAL, IMMEDIATE).
from console.settings import DATABASES  # noqa: E402

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(os.environ["CONSOLE_DATA_DIR"], "test.sqlite3")}
