"""Git sources: a real worker clones a real repository served over HTTP on loopback (and over file:// for staff).

The request answers 202 with a clone job at once; the source appears on the job when the worker is done. Refused
URLs (file:// for users who are not staff, local paths, `ext::`, options, the console's own machine) are a 400
that stores nothing. The worker runs with GIT_TIMEOUT=4 so that a server that never answers fails fast.
"""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import time
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from builds.models import Source, SourceImport
from builds.services import repositories
from builds.sources import git as gitmodule
from builds.sources.git import GitError
from builds.sources.sourcestore import read_file, read_index
from console import jobs
from console.constants import JobStatus
from tests.builds.conftest import stored_files
from tests.fixtures.http import serving
from tests.fixtures.worker import routed_to, running_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
WORKER_GIT_TIMEOUT = 4


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "core.autocrlf=false",
                             *args], cwd=cwd, capture_output=True, text=True, check=True)
    return result.stdout.strip()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass




@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> dict:
    """A bare repository with two commits on main, a tag on the first, and a feature branch, served over git's
    "dumb" HTTP protocol by a plain static file server on loopback."""
    work = tmp_path_factory.mktemp("work")
    git(work, "init", "-q", "-b", "main")
    (work / "Dockerfile").write_text("FROM busybox:1.35.0\nCOPY . /app\n")
    (work / "crlf.txt").write_bytes(b"line one\r\nline two\r\n")
    (work / "run.sh").write_text("#!/bin/sh\necho v1\n")
    (work / "run.sh").chmod(0o755)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "first")
    first = git(work, "rev-parse", "HEAD")
    git(work, "tag", "v1")
    (work / "run.sh").write_text("#!/bin/sh\necho v2\n")
    git(work, "commit", "-q", "-am", "second")
    second = git(work, "rev-parse", "HEAD")
    git(work, "checkout", "-q", "-b", "feature")
    (work / "feature.txt").write_text("feature\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "feature")
    feature = git(work, "rev-parse", "HEAD")
    git(work, "checkout", "-q", "main")
    root = tmp_path_factory.mktemp("served")
    bare = root / "repo.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    git(bare, "update-server-info")
    with serving(partial(_Quiet, directory=str(root))) as base:
        yield {"url": f"{base}/repo.git", "file_url": f"file://{bare}", "first": first, "second": second,
               "feature": feature}


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    env = {"GIT_TIMEOUT": str(WORKER_GIT_TIMEOUT)}
    with running_worker(tmp_path_factory.mktemp("worker"), env=env) as running, routed_to(running):
        yield running


def files_of(source: Source) -> dict[str, bytes]:
    return {entry.path: read_file(source.sha256, entry) for entry in read_index(source.sha256) if entry.kind == "file"}


def post(api, repository, **data):
    return api.post(f"/api/v1/repositories/{repository.pk}/sources/", data, format="json")


def finished(api, job: dict, timeout: float = 60) -> dict:
    """The clone job once it has ended, as the API shows it."""

    def final():
        body = api.get(job["url"]).json()
        return body if body["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(final, timeout=timeout, message=f"clone job {job['id']} to end")


def clone(api, repository, **data) -> dict:
    response = post(api, repository, **data)
    assert response.status_code == 202, response.json()
    return finished(api, response.json())


def test_it_answers_202_at_once_and_the_worker_makes_the_source(owner_api, repository, upstream, worker):
    response = post(owner_api, repository, git_url=upstream["url"])
    assert response.status_code == 202, response.json()
    job = response.json()
    assert job["url"] == f"/api/v1/source-imports/{job['id']}/"
    assert job["git_url"] == upstream["url"]
    assert job["source"] is None
    job = finished(owner_api, job)
    assert job["status"] == "succeeded", job
    assert f"Cloning {upstream['url']}" in job["log"]
    source = Source.objects.get(pk=job["source"])
    assert source.commit == upstream["second"]
    assert source.repository == repository
    files = files_of(source)
    assert files["run.sh"] == b"#!/bin/sh\necho v2\n"
    assert not any(path.startswith(".git/") or path == ".git" for path in files)
    log = owner_api.get(f"{job['url']}log/").json()
    assert log["finished"] is True
    assert any(line.startswith("Stored ") for line in log["lines"])


@pytest.mark.parametrize(("ref", "commit_key", "expected"), [
    ("v1", "first", b"#!/bin/sh\necho v1\n"),
    ("feature", "feature", b"#!/bin/sh\necho v2\n"),
])
def test_it_checks_out_tags_and_branches(owner_api, repository, upstream, worker, ref, commit_key, expected):
    job = clone(owner_api, repository, git_url=upstream["url"], ref=ref)
    source = Source.objects.get(pk=job["source"])
    assert source.commit == upstream[commit_key]
    assert files_of(source)["run.sh"] == expected


def test_it_checks_out_a_commit_keeps_modes_and_line_endings(owner_api, repository, upstream, worker):
    job = clone(owner_api, repository, git_url=upstream["url"], ref=upstream["first"])
    source = Source.objects.get(pk=job["source"])
    entries = {e.path: e for e in read_index(source.sha256)}
    assert entries["run.sh"].mode & 0o111
    assert "feature.txt" not in entries
    assert files_of(source)["crlf.txt"] == b"line one\r\nline two\r\n"


def test_the_same_commit_is_stored_once(owner_api, repository, upstream, worker):
    first = Source.objects.get(pk=clone(owner_api, repository, git_url=upstream["url"], ref="v1")["source"])
    files = stored_files()
    second = Source.objects.get(pk=clone(owner_api, repository, git_url=upstream["url"],
                                         ref=upstream["first"])["source"])
    assert first.sha256 == second.sha256
    assert stored_files() == files


def test_a_missing_ref_fails_the_job_with_a_clear_error(owner_api, repository, upstream, worker):
    job = clone(owner_api, repository, git_url=upstream["url"], ref="no-such-branch")
    assert job["status"] == "failed"
    assert "The ref 'no-such-branch' is not in" in job["error"]
    assert "error: The ref 'no-such-branch'" in job["log"]
    assert job["source"] is None
    assert not Source.objects.exists()
    assert stored_files() == []


def test_staff_may_clone_over_file_urls(staff, staff_api, upstream, worker):
    repository = repositories.create_repository(staff, "ops")
    job = clone(staff_api, repository, git_url=upstream["file_url"])
    assert job["status"] == "succeeded", job
    assert Source.objects.get(pk=job["source"]).commit == upstream["second"]


def test_a_server_that_never_answers_fails_the_job_after_the_timeout(owner_api, repository, worker):
    """The request returns at once; the worker gives up after GIT_TIMEOUT with a clear log line."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = time.monotonic()
        response = post(owner_api, repository, git_url=f"http://127.0.0.1:{port}/never.git")
        assert time.monotonic() - started < 2
        assert response.status_code == 202, response.json()
        job = finished(owner_api, response.json(), timeout=WORKER_GIT_TIMEOUT + 30)
    assert job["status"] == "failed"
    assert f"did not finish within {WORKER_GIT_TIMEOUT} seconds" in job["error"]
    assert f"error: The clone did not finish within {WORKER_GIT_TIMEOUT} seconds" in job["log"]
    assert not Source.objects.exists()
    assert stored_files() == []


def test_credentials_in_the_url_are_never_shown_and_are_forgotten(owner_api, repository, worker):
    response = post(owner_api, repository, git_url="https://user:hunter2secret@127.0.0.1:9/repo.git")
    assert response.status_code == 202
    job = finished(owner_api, response.json())
    assert job["status"] == "failed"
    assert "Cannot clone https://user:****@127.0.0.1:9/repo.git" in job["error"]
    assert "hunter2secret" not in str(job) + str(owner_api.get("/api/v1/source-imports/").json())
    assert SourceImport.objects.get(pk=job["id"]).secret_url == ""


# -- refused in the request: a 400, nothing stored, no job --------------------------------------------------------


def test_a_file_url_is_refused_for_users_who_are_not_staff(owner_api, repository, upstream):
    response = post(owner_api, repository, git_url=upstream["file_url"])
    assert response.status_code == 400
    assert "only staff" in response.json()["detail"]
    assert not SourceImport.objects.exists() and not Source.objects.exists()


def test_loopback_http_is_refused_with_the_production_allowance(owner_api, repository, upstream, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    response = post(owner_api, repository, git_url=upstream["url"])
    assert response.status_code == 400
    assert "loopback" in response.json()["detail"]
    assert not SourceImport.objects.exists() and not Source.objects.exists()


@pytest.mark.parametrize("url", [
    "/var/lib/console/.git",
    "../../console/.git",
    "ext::sh -c touch% /tmp/pwned",
    "ext::sh",
    "fd::17",
    "--upload-pack=touch /tmp/pwned",
    "-uhttps://example.com/r.git",
    "git@github.com:org/repo.git",
    "ftp://example.com/repo.git",
    "not a url",
    "ssh://-oProxyCommand=touch%20/tmp/pwned/x",
    "https://example.com/r.git\n--upload-pack=x",
])
def test_local_transports_and_options_are_refused(owner_api, repository, url):
    response = post(owner_api, repository, git_url=url)
    assert response.status_code == 400, response.json()
    assert response.json()["detail"]
    assert not SourceImport.objects.exists() and not Source.objects.exists()


def test_a_ref_that_looks_like_an_option_is_refused(owner_api, repository, upstream):
    response = post(owner_api, repository, git_url=upstream["url"], ref="--upload-pack=touch /tmp/x")
    assert response.status_code == 400
    assert "not a valid branch, tag or commit name" in response.json()["detail"]
    assert not SourceImport.objects.exists()


def test_the_setting_opens_file_urls_to_everyone(settings, owner):
    assert gitmodule.file_urls_allowed(owner) is False
    settings.GIT_ALLOW_FILE_URLS = True
    assert gitmodule.validate_url("file:///srv/repo.git", owner) == "file:///srv/repo.git"


# -- what git is told, and the limits (the clone run in this process, against real git and real servers) ---------


def test_git_gets_the_url_after_double_dash_and_only_the_allowed_protocols(owner, upstream, monkeypatch):
    seen: list[tuple[list[str], dict]] = []
    real = subprocess.Popen

    def recording(command, *args, **kwargs):
        seen.append((list(command), kwargs.get("env") or {}))
        return real(command, *args, **kwargs)

    monkeypatch.setattr(gitmodule.subprocess, "Popen", recording)
    result = gitmodule.checkout(upstream["url"], user=owner)
    result.cleanup()
    command, env = next(item for item in seen if "clone" in item[0])
    assert command[command.index("--") + 1] == upstream["url"]
    assert "protocol.allow=never" in command and "http.followRedirects=false" in command
    assert "protocol.https.allow=always" in command and "protocol.file.allow=always" not in command
    assert env["GIT_ALLOW_PROTOCOL"] == "https:http:ssh:git"


def test_a_redirect_to_a_refused_address_is_not_followed(owner, upstream, settings):
    """127.0.0.2 is allowed (as an operator could), 127.0.0.1 is not: git must not follow the redirect there."""
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]
    hits: list[str] = []

    class Target(_Quiet):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"INTERNAL-SECRET")

    with serving(Target) as target:
        class Redirect(_Quiet):
            def do_GET(self) -> None:
                self.send_response(302)
                self.send_header("Location", f"{target}{self.path}")
                self.end_headers()

        with serving(Redirect, host="127.0.0.2") as base:
            with pytest.raises(GitError) as refused:
                gitmodule.checkout(f"{base}/repo.git", user=owner)
            with pytest.raises(GitError, match="loopback"):
                gitmodule.checkout(f"{target}/repo.git", user=owner)
    assert hits == []
    assert "INTERNAL-SECRET" not in str(refused.value)


def test_a_clone_larger_than_the_limit_is_stopped(owner, tmp_path, settings):
    work = tmp_path / "big"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    # Zeros compress to almost nothing: the limit must hold for what the checkout would write.
    (work / "zeros.bin").write_bytes(bytes(8 * 1024 * 1024))
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "big")
    settings.GIT_ALLOW_FILE_URLS = True
    settings.CONSOLE_MAX_UNPACKED_BYTES = 1024 * 1024
    with pytest.raises(GitError, match="larger than 1,048,576 bytes"):
        gitmodule.checkout(f"file://{work}", user=owner)
    assert stored_files() == []
    # Random bytes do not compress: the clone itself passes the limit and is stopped.
    (work / "random.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "random")
    with pytest.raises(GitError, match="larger than 1,048,576 bytes"):
        gitmodule.checkout(f"file://{work}", user=owner)
    assert stored_files() == []
    shutil.rmtree(work)


def test_the_reaper_fails_imports_whose_worker_is_gone(owner, repository):
    old = timezone.now() - timedelta(hours=1)
    job = SourceImport.objects.create(owner=owner, repository=repository, git_url="https://example.com/r.git",
                                      status=JobStatus.RUNNING, started_at=old, heartbeat_at=old,
                                      secret_url="https://u:p@example.com/r.git")
    fresh = SourceImport.objects.create(owner=owner, repository=repository, git_url="https://example.com/r.git",
                                        status=JobStatus.RUNNING, started_at=timezone.now(),
                                        heartbeat_at=timezone.now())
    assert repositories.reap_lost_imports() == [job.pk]
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "worker" in job.error and job.secret_url == ""
    assert "error: The worker cloning this repository was lost" in jobs.log_text(job)
    fresh.refresh_from_db()
    assert fresh.status == JobStatus.RUNNING


# -- the browser's face -------------------------------------------------------------------------------------------


def test_the_git_form_opens_the_clone_page_until_the_source_appears(owner_client, repository, upstream, worker):
    response = owner_client.post(reverse("builds:source-import-create", args=[repository.pk]),
                                 {"git_url": upstream["url"]})
    job = SourceImport.objects.get()
    assert response.status_code == 302 and response.url == reverse("builds:source-import-detail", args=[job.pk])
    page = owner_client.get(response.url)
    assert page.status_code == 200
    assert upstream["url"] in page.content.decode()
    assert f'data-api="/api/v1/source-imports/{job.pk}/"' in page.content.decode()
    wait_for(lambda: SourceImport.objects.get(pk=job.pk).source_id, message="the source")
    job.refresh_from_db()
    assert f'href="/sources/{job.source_id}/"' in owner_client.get(response.url).content.decode()


def test_a_refused_git_url_is_a_form_error(owner_client, repository, upstream):
    response = owner_client.post(reverse("builds:source-import-create", args=[repository.pk]),
                                 {"git_url": upstream["file_url"]})
    assert response.status_code == 400
    assert "only staff" in response.context["git_form"].errors["git_url"][0]
    assert not SourceImport.objects.exists()


def test_an_outsider_cannot_see_the_clone_page(client, outsider, owner, repository):
    job = SourceImport.objects.create(owner=owner, repository=repository, git_url="https://example.com/r.git")
    client.force_login(outsider)
    assert client.get(reverse("builds:source-import-detail", args=[job.pk])).status_code == 404
    assert APIClient().get(f"/api/v1/source-imports/{job.pk}/").status_code == 401
