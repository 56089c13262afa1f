"""Git sources from a real local repository over file://: branches, tags, commits, CRLF, bad URLs and refs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from builds.models import Source
from builds.sourcestore import read_file, read_index
from tests.builds.conftest import stored_files


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "core.autocrlf=false",
                             *args], cwd=cwd, capture_output=True, text=True, check=True)
    return result.stdout.strip()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> dict:
    """A bare repository with two commits on main, a tag on the first, and a feature branch."""
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
    bare = tmp_path_factory.mktemp("bare") / "repo.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return {"url": f"file://{bare}", "first": first, "second": second, "feature": feature}


def files_of(source: Source) -> dict[str, bytes]:
    return {entry.path: read_file(source.sha256, entry) for entry in read_index(source.sha256) if entry.kind == "file"}


def post(owner_api, repository, **data):
    return owner_api.post(f"/api/v1/repositories/{repository.pk}/sources/", data, format="json")


def test_it_clones_the_default_branch(owner_api, repository, upstream):
    response = post(owner_api, repository, git_url=upstream["url"])
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["kind"] == "git"
    assert body["commit"] == upstream["second"]
    files = files_of(Source.objects.get(pk=body["id"]))
    assert files["run.sh"] == b"#!/bin/sh\necho v2\n"
    assert not any(path.startswith(".git/") or path == ".git" for path in files)


@pytest.mark.parametrize(("ref", "commit_key", "expected"), [
    ("v1", "first", b"#!/bin/sh\necho v1\n"),
    ("feature", "feature", b"#!/bin/sh\necho v2\n"),
    ("main", "second", b"#!/bin/sh\necho v2\n"),
])
def test_it_checks_out_tags_and_branches(owner_api, repository, upstream, ref, commit_key, expected):
    body = post(owner_api, repository, git_url=upstream["url"], ref=ref).json()
    assert body["commit"] == upstream[commit_key]
    assert files_of(Source.objects.get(pk=body["id"]))["run.sh"] == expected


def test_it_checks_out_a_commit_and_keeps_the_executable_bit(owner_api, repository, upstream):
    body = post(owner_api, repository, git_url=upstream["url"], ref=upstream["first"]).json()
    assert body["commit"] == upstream["first"]
    entries = {e.path: e for e in read_index(Source.objects.get(pk=body["id"]).sha256)}
    assert entries["run.sh"].mode & 0o111
    assert "feature.txt" not in entries


def test_crlf_files_arrive_as_committed(owner_api, repository, upstream):
    body = post(owner_api, repository, git_url=upstream["url"]).json()
    assert files_of(Source.objects.get(pk=body["id"]))["crlf.txt"] == b"line one\r\nline two\r\n"


def test_the_same_commit_is_stored_once(owner_api, repository, upstream):
    first = post(owner_api, repository, git_url=upstream["url"], ref="v1").json()
    files = stored_files()
    second = post(owner_api, repository, git_url=upstream["url"], ref=upstream["first"]).json()
    assert first["sha256"] == second["sha256"]
    assert stored_files() == files


def test_a_missing_ref_is_a_clear_400(owner_api, repository, upstream):
    response = post(owner_api, repository, git_url=upstream["url"], ref="no-such-branch")
    assert response.status_code == 400
    assert "The ref 'no-such-branch' is not in" in response.json()["detail"]
    assert not Source.objects.exists()
    assert stored_files() == []


@pytest.mark.parametrize(("url", "message"), [
    ("file:///nonexistent/repo.git", "Cannot clone file:///nonexistent/repo.git"),
    ("ftp://example.com/repo.git", "Use a file://, https:// or ssh:// git URL"),
    ("not a url", "Use a file://, https:// or ssh:// git URL"),
    ("https://user:hunter2secret@127.0.0.1:9/repo.git", "Cannot clone https://user:****@127.0.0.1:9/repo.git"),
])
def test_a_bad_url_is_a_clear_400_without_secrets(owner_api, repository, url, message):
    response = post(owner_api, repository, git_url=url)
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert "hunter2secret" not in response.content.decode()
    assert not Source.objects.exists()


def test_a_ref_that_looks_like_an_option_is_refused(owner_api, repository, upstream):
    response = post(owner_api, repository, git_url=upstream["url"], ref="--upload-pack=touch /tmp/x")
    assert response.status_code == 400
    assert "not a valid branch, tag or commit name" in response.json()["detail"]
