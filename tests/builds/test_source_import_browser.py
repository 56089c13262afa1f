"""The git clone's page in headless Chromium: it follows the clone job through the API (static/js/poll.js) and
opens the new source once the clone succeeded. The job's row is moved on by the test, as a worker would."""

from __future__ import annotations

import io

import pytest

from builds.models import SourceImport
from builds.services import repositories
from console.constants import JobStatus
from tests.builds.archive_factory import HELLO_TREE, tar_bytes
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_clone_page_follows_the_job_and_opens_the_new_source(live_server, page, owner):
    repository = repositories.create_repository(owner, "hello")
    job = SourceImport.objects.create(owner=owner, repository=repository, git_url="https://git.example/hello.git")
    page.goto(f"{live_server.url}/accounts/login/?next=/source-imports/{job.pk}/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("main form.form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/source-imports/{job.pk}/")
    SourceImport.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    page.wait_for_selector("#import-status:has-text('Running')")

    source = repositories.add_archive_source(repository, io.BytesIO(tar_bytes(HELLO_TREE, "gz")), "hello.tar.gz")
    SourceImport.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, source=source)
    page.wait_for_url(f"{live_server.url}/sources/{source.pk}/")
    assert page.is_visible("#file-tree")


def test_a_failed_clone_shows_its_error_and_stays(live_server, page, owner):
    repository = repositories.create_repository(owner, "hello")
    job = SourceImport.objects.create(owner=owner, repository=repository, git_url="https://git.example/hello.git")
    page.goto(f"{live_server.url}/accounts/login/?next=/source-imports/{job.pk}/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("main form.form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/source-imports/{job.pk}/")
    SourceImport.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, error="The ref main was not found.")
    page.wait_for_selector("#import-status:has-text('Failed')")
    assert page.inner_text("#import-error") == "The ref main was not found."
    assert page.url == f"{live_server.url}/source-imports/{job.pk}/"
