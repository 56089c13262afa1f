"""The embedded default's broker (Celery's filesystem transport) keeps every folder in the data folder: none in
the working folder (kombu's own default for its broadcast tables is ./control)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_broker_folder_is_in_the_data_folder(tmp_path):
    environment = {k: v for k, v in os.environ.items()
                   if k not in {"CELERY_BROKER_URL", "DATABASE_URL", "PYTEST_XDIST_WORKER"}}
    environment.update(CONSOLE_DATA_DIR=str(tmp_path / "data"), CONSOLE_TEST_DATA_DIR=str(tmp_path / "data"),
                       DJANGO_SETTINGS_MODULE="tests.settings")
    code = ("import django, json; django.setup(); from django.conf import settings; "
            "print(json.dumps(settings.CELERY_BROKER_TRANSPORT_OPTIONS))")
    # Run from an empty folder: nothing may appear in it.
    work = tmp_path / "cwd"
    work.mkdir()
    answer = subprocess.run([sys.executable, "-c", code], cwd=work, env={**environment, "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=120)
    assert answer.returncode == 0, answer.stderr[-2000:]
    options = json.loads(answer.stdout)
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        assert Path(options[key]).is_relative_to(tmp_path / "data"), key
        assert Path(options[key]).is_dir(), key
    assert list(work.iterdir()) == []
