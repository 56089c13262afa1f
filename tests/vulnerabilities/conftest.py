from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def vulnerability_folders(settings, tmp_path):
    """Each test its own uploads folder and folder-import root."""
    settings.VULNERABILITY_UPLOADS_DIR = tmp_path / "uploads"
    settings.VULNERABILITY_IMPORT_ROOTS = [str(tmp_path / "osv")]
    (tmp_path / "osv").mkdir()
    return tmp_path


@pytest.fixture
def import_zip(staff, django_capture_on_commit_callbacks):
    """Import a zip as staff through the service and run its job here, as a worker would; returns the run."""
    from builds.vulnerabilities import runner, services
    from tests.vulnerabilities.osv_factory import upload

    def run(data: bytes):
        with django_capture_on_commit_callbacks(execute=False):
            queued = services.request_zip_import(staff, upload(data))
        runner.run_import(queued.pk)
        queued.refresh_from_db()
        return queued

    return run
