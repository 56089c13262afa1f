"""The embedded database (SQLite, the default of `make run`): WAL, a busy timeout and IMMEDIATE transactions, so
that concurrent processes and threads wait for each other instead of failing with "database is locked"; its file
and WAL companions stay private. Each case runs in a fresh interpreter on a SQLite file of its own."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_console(data_dir: Path, code: str, timeout: float = 300) -> subprocess.Popen:
    """`code` in an interpreter whose console runs on the default SQLite file of `data_dir`."""
    # Not as a pytest-xdist worker either: tests/settings.py would put the data in a subfolder per worker.
    environment = {k: v for k, v in os.environ.items()
                   if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "PYTEST_XDIST_WORKER"}}
    environment.update({"CONSOLE_TEST_DATA_DIR": str(data_dir), "DJANGO_SETTINGS_MODULE": "tests.settings",
                        "CELERY_BROKER_URL": "memory://"})
    setup = "import django; django.setup()\n"
    # umask 022, as a shell gives: what the database's files get must not depend on the caller's umask.
    return subprocess.Popen([sys.executable, "-c", setup + code], cwd=ROOT, env=environment, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=lambda: os.umask(0o022))


def finished(process: subprocess.Popen, timeout: float = 300) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return out


def test_it_opens_sqlite_in_wal_mode_with_a_busy_timeout_and_immediate_transactions(tmp_path):
    code = """
import json
from django.db import connection
with connection.cursor() as cursor:
    pragmas = {name: cursor.execute(f"PRAGMA {name}").fetchone()[0]
               for name in ("journal_mode", "synchronous", "busy_timeout")}
print(json.dumps({**pragmas, "mode": connection.transaction_mode}))
"""
    answer = json.loads(finished(run_console(tmp_path, code)))
    # synchronous 1 is NORMAL; busy_timeout is in milliseconds.
    assert answer == {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 20000, "mode": "IMMEDIATE"}


def test_its_wal_files_are_as_private_as_the_database(tmp_path):
    # Both connections stay open while the modes are read: SQLite removes -wal and -shm when the last one closes.
    code = """
import os, stat
from django.conf import settings
from django.db import connection
from django.contrib.auth import get_user_model
from django.core.management import call_command
call_command("migrate", run_syncdb=True, verbosity=0)
get_user_model().objects.create_user("walrus", "walrus@example.com", "a password of some length")
name = settings.DATABASES["default"]["NAME"]
for path in (name, name + "-wal", name + "-shm"):
    print(path, oct(stat.S_IMODE(os.stat(path).st_mode)))
"""
    lines = finished(run_console(tmp_path, code)).split("\n")
    modes = dict(line.split(" ") for line in lines if line)
    assert [Path(path).name for path in modes] == ["console.sqlite3", "console.sqlite3-wal", "console.sqlite3-shm"]
    assert set(modes.values()) == {"0o600"}
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700


def test_it_tightens_wal_files_an_older_version_left_readable(tmp_path):
    for suffix in ("", "-wal", "-shm"):
        path = tmp_path / f"console.sqlite3{suffix}"
        path.touch()
        path.chmod(0o644)
    finished(run_console(tmp_path, "pass"))
    for suffix in ("", "-wal", "-shm"):
        assert stat.S_IMODE((tmp_path / f"console.sqlite3{suffix}").stat().st_mode) == 0o600


# Each process appends to one job's log from THREADS threads at once, each append a read-then-write transaction
# (the last line number, then the lines): the pattern that failed at once with "database is locked" when SQLite
# transactions were deferred. Two such processes run at once, as the worker and the web server do.
APPENDERS = """
import sys, threading
from django.db import connection
from console import jobs
from tests.jobapp.models import SampleJob
job = SampleJob.objects.get(payload="shared")
errors = []

def append(thread):
    try:
        for n in range(APPENDS):
            jobs.append_log(job, [f"{sys.argv[1]}-{thread}-{n}-a", f"{sys.argv[1]}-{thread}-{n}-b"])
            # A read between the writes, as a reader of the log does.
            jobs.read_log(job, 0, 10)
    except Exception as exc:
        errors.append(repr(exc))
    finally:
        connection.close()

threads = [threading.Thread(target=append, args=(t,)) for t in range(THREADS)]
for thread in threads: thread.start()
for thread in threads: thread.join()
print("\\n".join(errors))
"""
THREADS, APPENDS, PROCESSES = 4, 40, 2


def test_threads_of_two_processes_append_to_one_log_at_once_without_a_lock_error(tmp_path):
    finished(run_console(tmp_path, """
from django.core.management import call_command
call_command("migrate", run_syncdb=True, verbosity=0)
from tests.jobapp.models import SampleJob
SampleJob.objects.create(payload="shared")
"""))
    code = APPENDERS.replace("APPENDS", str(APPENDS)).replace("THREADS", str(THREADS))
    # Not as a pytest-xdist worker either: tests/settings.py would put the data in a subfolder per worker.
    environment = {k: v for k, v in os.environ.items()
                   if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "PYTEST_XDIST_WORKER"}}
    environment.update({"CONSOLE_TEST_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "tests.settings",
                        "CELERY_BROKER_URL": "memory://"})
    processes = [
        subprocess.Popen([sys.executable, "-c", "import django; django.setup()\n" + code, f"p{n}"], cwd=ROOT,
                         env=environment, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for n in range(PROCESSES)
    ]
    for process in processes:
        assert finished(process).strip() == ""

    answer = json.loads(finished(run_console(tmp_path, """
import json
from console import jobs
from console.models import JobLogLine
from tests.jobapp.models import SampleJob
job = SampleJob.objects.get(payload="shared")
numbers = list(JobLogLine.objects.filter(job_id=job.pk, job_type=SampleJob.job_type()).values_list("number", flat=True))
print(json.dumps({"count": job.log_line_count, "numbers": sorted(numbers), "text": jobs.log_text(job).split("\\n")}))
""")))
    total = PROCESSES * THREADS * APPENDS * 2
    assert answer["count"] == total
    assert answer["numbers"] == list(range(total))
    # Each append's two lines are next to each other: one transaction, numbered on from the last line.
    text = answer["text"]
    assert all(text[i].endswith("-a") and text[i + 1] == text[i][:-1] + "b" for i in range(0, total, 2))
