from __future__ import annotations

import pytest

from builds.models import Repository, Source
from tests.builds.archive_factory import HELLO_TREE, tar_bytes
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, live_server) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("main form.form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_an_archive_uploads_with_progress_and_shows_its_context(live_server, page, screenshot, owner, tmp_path):
    repository = Repository.objects.create(owner=owner, name="hello")
    good = tmp_path / "hello.tar.gz"
    good.write_bytes(tar_bytes(HELLO_TREE, "gz"))
    evil = tmp_path / "evil.tar"
    evil.write_bytes(tar_bytes([("/etc/passwd", b"x")]))
    log_in(page, live_server)
    page.goto(f"{live_server.url}/repositories/{repository.pk}/")

    page.set_input_files("#id_archive", str(evil))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#upload-error:not([hidden])")
    assert "absolute path" in page.inner_text("#upload-error")
    screenshot("refused")
    assert not Source.objects.exists()

    page.set_input_files("#id_archive", str(good))
    page.click("#upload-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/sources/*/")
    assert page.is_visible("#file-tree")
    excluded = page.locator("#file-tree tr.excluded").all_inner_texts()
    assert any("debug.log" in row and "*.log" in row for row in excluded)
    screenshot("source")
    assert Source.objects.get().file_count == len(HELLO_TREE)
