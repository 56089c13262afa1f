"""Git sources: clone a URL at a ref and turn the checkout into a tar, the way the Docker CLI would see it.

The clone uses `core.autocrlf=input`, so text files arrive with the line endings they were committed with
whatever the machine's git configuration says. Like the Docker CLI for a git context, `.git` is not part of
the result. The tar is deterministic (sorted names, the commit's time on every member), so the same commit
always gives the same sha256 and is stored once.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

from builds.archives import ArchiveError, check_symlink
from builds.sourcestore import scratch_dir

ALLOWED_SCHEMES = ("file", "https", "ssh")
REF_PATTERN = re.compile(r"^[A-Za-z0-9._/@+-]{1,255}$")


class GitError(Exception):
    """The repository cannot be cloned or the ref is not in it; the message says which, without secrets."""


@dataclass(frozen=True)
class Checkout:
    tar_path: Path
    commit: str
    scratch: Path

    def cleanup(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)


def redact_url(url: str) -> str:
    """The URL without any password or token in it, fit to store and show."""
    parts = urlsplit(url)
    if parts.password is None and not (parts.username and parts.scheme == "https"):
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:****@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def validate_url(url: str) -> str:
    url = url.strip()
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise GitError(f"Use a file://, https:// or ssh:// git URL (got {redact_url(url)!r}).")
    if scheme != "file" and not urlsplit(url).hostname:
        raise GitError(f"The git URL {redact_url(url)!r} names no host.")
    return url


def validate_ref(ref: str) -> str:
    ref = ref.strip()
    if ref and (not REF_PATTERN.match(ref) or ref.startswith("-") or ".." in ref):
        raise GitError(f"{ref!r} is not a valid branch, tag or commit name.")
    return ref


def _git(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false",
           "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new", "LC_ALL": "C"}
    try:
        return subprocess.run(
            ["git", "-c", "core.autocrlf=input", "-c", "advice.detachedHead=false", *args],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=settings.GIT_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git did not finish within {settings.GIT_TIMEOUT} seconds.") from None


def _last_line(text: str, url: str, redacted: str) -> str:
    lines = [line for line in text.replace(url, redacted).splitlines() if line.strip()]
    return lines[-1].removeprefix("fatal: ").strip() if lines else "git failed"


def checkout(url: str, ref: str = "") -> Checkout:
    """Clone `url`, check out `ref` (a branch, tag or commit; default HEAD) and tar the tree."""
    url, ref = validate_url(url), validate_ref(ref)
    redacted = redact_url(url)
    scratch = Path(tempfile.mkdtemp(prefix="git-", dir=scratch_dir()))
    try:
        tree = scratch / "tree"
        cloned = _git(["clone", "--quiet", "--no-checkout", "--", url, str(tree)])
        if cloned.returncode != 0:
            raise GitError(f"Cannot clone {redacted}: {_last_line(cloned.stderr, url, redacted)}")
        target = ref or "HEAD"
        resolved = _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{target}^{{commit}}"], cwd=tree)
        if resolved.returncode != 0:
            # A branch of the remote that is not checked out locally is known as origin/<branch>.
            resolved = _git(["rev-parse", "--verify", "--quiet", f"origin/{target}^{{commit}}"], cwd=tree)
        if resolved.returncode != 0:
            raise GitError(f"The ref {target!r} is not in {redacted}.")
        commit = resolved.stdout.strip()
        checked_out = _git(["checkout", "--quiet", "--detach", commit], cwd=tree)
        if checked_out.returncode != 0:
            raise GitError(f"Cannot check out {target!r}: {_last_line(checked_out.stderr, url, redacted)}")
        commit_time = int(_git(["show", "-s", "--format=%ct", commit], cwd=tree).stdout.strip() or 0)
        tar_path = scratch / "source.tar"
        _write_tree_tar(tree, tar_path, commit_time)
        shutil.rmtree(tree, ignore_errors=True)
        return Checkout(tar_path=tar_path, commit=commit, scratch=scratch)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def _write_tree_tar(tree: Path, tar_path: Path, mtime: int) -> None:
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as archive:
        for folder, dirs, files in os.walk(tree):
            dirs[:] = sorted(d for d in dirs if not (Path(folder) == tree and d == ".git"))
            for name in [*dirs, *sorted(files)]:
                full = Path(folder) / name
                relative = full.relative_to(tree).as_posix()
                info = archive.gettarinfo(str(full), arcname=relative)
                if info.issym():
                    try:
                        check_symlink(relative, info.linkname)
                    except ArchiveError as exc:
                        raise GitError(str(exc)) from None
                info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, 0, 0, "", ""
                if info.isreg():
                    with full.open("rb") as handle:
                        archive.addfile(info, handle)
                else:
                    archive.addfile(info)
