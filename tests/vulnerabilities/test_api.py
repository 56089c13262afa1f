"""The vulnerability endpoints: staff's imports, a user's own image's matches, the images list's filter."""

from __future__ import annotations

import pytest

from builds.vulnerabilities.models import Vulnerability, VulnerabilityImport
from console.constants import JobStatus
from tests.vulnerabilities.osv_factory import analysed_image, osv_zip, record, upload

IMPORTS = "/api/v1/vulnerabilities/imports/"


def test_staff_import_a_zip_as_a_background_run(staff_api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as sent:
        answer = staff_api.post(IMPORTS, {"file": upload(osv_zip(record("OSV-1", "npm", "x", fixed="1.0.0")))},
                                format="multipart")
    assert answer.status_code == 202, answer.content
    assert answer.json()["status"] == JobStatus.QUEUED
    assert answer.json()["kind"] == "zip"
    assert len(sent) == 1
    assert staff_api.get(IMPORTS).json()["results"][0]["id"] == answer.json()["id"]
    assert staff_api.get(f"{IMPORTS}{answer.json()['id']}/log/").status_code == 200


def test_a_corrupt_upload_is_a_400_that_stores_nothing(staff_api, settings):
    answer = staff_api.post(IMPORTS, {"file": upload(b"not a zip")}, format="multipart")
    assert answer.status_code == 400
    assert "not a zip" in answer.json()["file"][0]
    assert not VulnerabilityImport.objects.exists()


def test_staff_import_a_folder_on_the_server(staff_api, vulnerability_folders, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        answer = staff_api.post(IMPORTS, {"folder": str(vulnerability_folders / "osv")}, format="json")
    assert answer.status_code == 202, answer.content
    assert answer.json()["kind"] == "folder"
    assert staff_api.post(IMPORTS, {"folder": "/etc"}, format="json").status_code == 400


def test_an_import_needs_a_file_or_a_folder(staff_api):
    assert staff_api.post(IMPORTS, {}, format="json").status_code == 400


def test_users_who_are_not_staff_cannot_import_or_see_imports(owner_api, api_client):
    data = {"file": upload(osv_zip(record("OSV-1", "npm", "x", fixed="1.0.0")))}
    assert owner_api.post(IMPORTS, data, format="multipart").status_code == 403
    assert owner_api.get(IMPORTS).status_code == 403
    assert api_client.get(IMPORTS).status_code == 401
    assert not VulnerabilityImport.objects.exists()


def test_imports_answer_get_and_post_only(staff_api):
    assert staff_api.delete(f"{IMPORTS}1/").status_code in (404, 405)
    assert staff_api.put(IMPORTS, {}, format="json").status_code == 405


@pytest.fixture
def matched_images(import_zip, owner, outsider):
    fixable = analysed_image(owner, "f1", [("npm", "a", "1.0.0"), ("npm", "b", "1.0.0")])
    unfixable = analysed_image(owner, "f2", [("npm", "b", "1.0.0")])
    clean = analysed_image(owner, "f3", [("npm", "a", "9.0.0")])
    theirs = analysed_image(outsider, "f4", [("npm", "a", "1.0.0")])
    run = import_zip(osv_zip(record("OSV-A", "npm", "a", fixed="2.0.0", range_type="SEMVER", severity="HIGH",
                                    aliases=["CVE-2026-1"], summary="Prototype pollution in a"),
                             record("OSV-B", "npm", "b", introduced="0.5.0", range_type="SEMVER")))
    assert run.status == JobStatus.SUCCEEDED
    return {"fixable": fixable, "unfixable": unfixable, "clean": clean, "theirs": theirs}


def test_it_lists_an_images_vulnerabilities(owner_api, matched_images):
    answer = owner_api.get(f"/api/v1/images/{matched_images['fixable'].pk}/vulnerabilities/")
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert answer.json()["count"] == 2
    assert results[0] == {
        "id": "OSV-A", "aliases": ["CVE-2026-1"], "summary": "Prototype pollution in a", "severity": "HIGH",
        "package": "a", "package_type": "npm", "ecosystem": "npm", "matched_name": "a", "installed_version": "1.0.0",
        "fixed_version": "2.0.0", "fixable": True, "new": True,
        "first_seen_import": VulnerabilityImport.objects.get().pk, "first_seen_at": results[0]["first_seen_at"],
    }
    assert results[1]["id"] == "OSV-B" and results[1]["fixable"] is False
    fixable = owner_api.get(f"/api/v1/images/{matched_images['fixable'].pk}/vulnerabilities/?fixable=true")
    assert [row["id"] for row in fixable.json()["results"]] == ["OSV-A"]
    assert owner_api.get(f"/api/v1/images/{matched_images['fixable'].pk}/vulnerabilities/?fixable=maybe") \
        .status_code == 400


def test_another_users_image_is_a_404(owner_api, matched_images):
    assert owner_api.get(f"/api/v1/images/{matched_images['theirs'].pk}/vulnerabilities/").status_code == 404
    assert owner_api.get("/api/v1/images/999999/vulnerabilities/").status_code == 404


def test_the_images_list_filters_by_a_fixable_vulnerability(owner_api, matched_images):
    def ids(query: str) -> set[int]:
        answer = owner_api.get(f"/api/v1/images/?fixable_vulnerability={query}")
        assert answer.status_code == 200, answer.content
        return {row["id"] for row in answer.json()["results"]}

    assert ids("true") == {matched_images["fixable"].pk}
    assert ids("false") == {matched_images["unfixable"].pk, matched_images["clean"].pk}
    assert owner_api.get("/api/v1/images/?fixable_vulnerability=perhaps").status_code == 400


def test_the_images_page_filters_by_a_fixable_vulnerability(owner_client, matched_images):
    from django.urls import reverse

    page = owner_client.get(reverse("builds:image-list") + "?fixable_vulnerability=true")
    assert page.status_code == 200
    html = page.content.decode()
    assert "app:f1" in html and "app:f2" not in html and "app:f3" not in html
    assert 'name="fixable_vulnerability"' in html


def test_the_image_page_shows_its_vulnerabilities(owner_client, matched_images):
    from django.urls import reverse

    html = owner_client.get(reverse("builds:image-detail", args=[matched_images["fixable"].pk])).content.decode()
    assert 'id="image-vulnerabilities"' in html
    assert "OSV-A" in html and "OSV-B" in html and "Prototype pollution in a" in html
    assert "2 known vulnerabilities in its packages, 1 fixable by a newer version, 2 new since the last import" in html
    clean = owner_client.get(reverse("builds:image-detail", args=[matched_images["clean"].pk])).content.decode()
    assert "0 known vulnerabilities" in clean and "OSV-A" not in clean


def test_the_image_page_says_when_no_data_was_imported(owner_client, owner):
    from django.urls import reverse

    image = analysed_image(owner, "g1", [("npm", "a", "1.0.0")])
    assert not Vulnerability.objects.exists()
    html = owner_client.get(reverse("builds:image-detail", args=[image.pk])).content.decode()
    assert "No vulnerability data has been imported" in html
