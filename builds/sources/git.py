"""Git sources: clone a URL at a ref and turn the checkout into a tar, the way the Docker CLI would see it.

The clone uses `core.autocrlf=input`, so text files arrive with the line endings they were committed with
whatever the machine's git configuration says. Like the Docker CLI for a git context, `.git` is not part of
the result. The tar is deterministic (sorted names, the commit's time on every member), so the same commit
always gives the same sha256 and is stored once.

A git URL is an outbound request on a user's behalf (console/netpolicy.py), and git can do much more than
fetch over the network, so:
- only `https`, `http`, `ssh` and `git` URLs are taken; `file://` (which reads the console's own disk, its own
  `.git` for one) only from staff or when the operator set GIT_ALLOW_FILE_URLS. Local paths, `ext::` (runs a
  command), `fd::`, scp-like `host:path` and anything starting with `-` (an option to git) are refused;
- git itself enforces the same list (`protocol.allow=never` plus one `protocol.<name>.allow=always` per allowed
  transport, and GIT_ALLOW_PROTOCOL, which overrides the configuration), and `--` precedes the URL;
- the URL's host is checked with netpolicy (purpose GIT) when the import is asked for and again in the worker
  right before the clone, and for http(s) git is pinned to the addresses that were checked
  (`http.curloptResolve`), so a name that changes its answer in between (rebinding) does not reach a refused
  address; http redirects are not followed (`http.followRedirects=false`), since a redirect could lead anywhere;
- the whole checkout has one deadline (GIT_TIMEOUT) and the clone's bytes on disk, and the tree it would check
  out, are held to CONSOLE_MAX_UNPACKED_BYTES: git is stopped (its whole process group) as soon as either is
  passed.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

from builds.sources.archives import ArchiveError, check_symlink
from builds.sources.sourcestore import scratch_dir
from console import netpolicy
from console.errors import DomainError
from console.folders import folder_bytes

NETWORK_SCHEMES = ("https", "http", "ssh", "git")
FILE_SCHEME = "file"
REF_PATTERN = re.compile(r"^[A-Za-z0-9._/@+-]{1,255}$")
DEFAULT_PORTS = {"https": 443, "http": 80, "ssh": 22, "git": 9418}
# How often a running git command is looked at: the deadline, the bytes it wrote, the job's heartbeat.
POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 5.0
URL_HINT = "Use an https://, http://, ssh:// or git:// URL (for scp-like host:path, write ssh://host/path)"


class GitError(DomainError):
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
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "(a URL that cannot be read)" if "@" in url else url
    if parts.password is None and not (parts.username and parts.scheme in ("https", "http")):
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if port:
        host = f"{host}:{port}"
    user = f"{parts.username}:****@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def file_urls_allowed(user) -> bool:
    """file:// clones read the console's own disk: staff may, others only where the operator allowed it."""
    return bool(settings.GIT_ALLOW_FILE_URLS or getattr(user, "is_staff", False))


def validate_url(url: str, user=None) -> str:
    """The URL, stripped, if `user` may have the console clone it; GitError (fit to show) otherwise."""
    url = (url or "").strip()
    if not url:
        raise GitError("Name the git URL to clone.")
    if url.startswith("-"):
        # git would read it as an option (--upload-pack=..., say), whatever follows.
        raise GitError("A git URL cannot start with '-'.")
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        raise GitError("A git URL cannot hold spaces or control characters.")
    redacted = redact_url(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it checks it
    except ValueError:
        raise GitError(f"{redacted!r} is not a URL. {URL_HINT}.") from None
    scheme = parts.scheme.lower()
    if "://" not in url or scheme not in (*NETWORK_SCHEMES, FILE_SCHEME):
        raise GitError(f"{URL_HINT} (got {redacted!r}).")
    if scheme == FILE_SCHEME:
        if not file_urls_allowed(user):
            raise GitError("file:// git URLs read the console's own disk: only staff may use them.")
        return url
    host = parts.hostname or ""
    if not host:
        raise GitError(f"The git URL {redacted!r} names no host.")
    if host.startswith("-") or (parts.username or "").startswith("-"):
        # ssh would read `-oProxyCommand=...` as an option.
        raise GitError(f"The git URL {redacted!r} names a host or user starting with '-'.")
    resolve_url(url, user)
    return url


def resolve_url(url: str, user=None) -> list[netpolicy.IPAddress]:
    """The checked addresses of a network URL's host; GitError with netpolicy's message when refused."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        return netpolicy.resolve_checked(parts.hostname or "", parts.port or DEFAULT_PORTS.get(scheme),
                                         user=user, purpose=netpolicy.GIT)
    except netpolicy.DestinationRefused as exc:
        raise GitError(str(exc)) from None


def validate_ref(ref: str) -> str:
    ref = (ref or "").strip()
    if ref and (not REF_PATTERN.match(ref) or ref.startswith("-") or ".." in ref):
        raise GitError(f"{ref!r} is not a valid branch, tag or commit name.")
    return ref


def _protocol_config(user) -> list[str]:
    """`-c` options that let git use only the transports this user may use, whatever git's own defaults."""
    allowed = list(NETWORK_SCHEMES)
    if file_urls_allowed(user):
        allowed.append(FILE_SCHEME)
    # An empty credential.helper drops the machine's helpers: the console's stored logins are not the user's.
    return ["protocol.allow=never", *(f"protocol.{name}.allow=always" for name in allowed),
            "http.followRedirects=false", "core.autocrlf=input", "advice.detachedHead=false",
            "core.askPass=/bin/false", "credential.helper="]


def _pinned_resolve(url: str, addresses: list[netpolicy.IPAddress]) -> list[str]:
    """For http(s): make curl connect to the addresses netpolicy checked, not to what DNS says a moment later."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if scheme not in ("http", "https") or not addresses:
        return []
    try:
        ipaddress.ip_address(host.strip("[]"))
        return []
    except ValueError:
        pass
    port = parts.port or DEFAULT_PORTS[scheme]
    listed = ",".join(f"[{a}]" if a.version == 6 else str(a) for a in addresses)
    return [f"http.curloptResolve={host}:{port}:{listed}"]


@dataclass
class _Run:
    """What every git command of one checkout shares: the deadline, the byte limit, the job's callbacks."""

    deadline: float
    max_bytes: int
    config: list[str]
    allowed_protocols: str
    heartbeat: Callable[[], None] | None = None
    last_beat: float = field(default_factory=time.monotonic)

    def environment(self) -> dict[str, str]:
        return {
            **os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false", "SSH_ASKPASS": "/bin/false",
            "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new", "LC_ALL": "C",
            # Takes precedence over any protocol.*.allow in the machine's git configuration.
            "GIT_ALLOW_PROTOCOL": self.allowed_protocols, "GIT_PROTOCOL_FROM_USER": "0",
        }

    def git(self, args: list[str], cwd: Path | None = None, watch: Path | None = None) -> subprocess.CompletedProcess:
        """Run git; stopped when the deadline passes or `watch` grows past the byte limit (GitError)."""
        command = ["git", *(item for option in self.config for item in ("-c", option)), *args]
        process = subprocess.Popen(command, cwd=cwd, env=self.environment(), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        try:
            while True:
                try:
                    stdout, stderr = process.communicate(timeout=POLL_SECONDS)
                    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
                except subprocess.TimeoutExpired:
                    pass
                self._check(watch)
        finally:
            if process.poll() is None:
                # ssh, git-remote-https and the rest run in git's process group: stop them all.
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.communicate()

    def _check(self, watch: Path | None) -> None:
        now = time.monotonic()
        if now > self.deadline:
            raise GitError(f"The clone did not finish within {settings.GIT_TIMEOUT} seconds (GIT_TIMEOUT).")
        if watch is not None and folder_bytes(watch) > self.max_bytes:
            raise GitError(f"The repository is larger than {self.max_bytes:,} bytes.")
        if self.heartbeat is not None and now - self.last_beat >= HEARTBEAT_SECONDS:
            self.last_beat = now
            self.heartbeat()


def _last_line(text: str, url: str, redacted: str) -> str:
    lines = [line for line in text.replace(url, redacted).splitlines() if line.strip()]
    return lines[-1].removeprefix("fatal: ").strip() if lines else "git failed"


def _tree_bytes(run: _Run, tree: Path, commit: str) -> int:
    """The bytes the commit's files would take once checked out, read from git's index of the tree."""
    listed = run.git(["ls-tree", "-r", "-l", "--full-tree", commit], cwd=tree)
    if listed.returncode != 0:
        raise GitError("Cannot read the commit's files.")
    total = 0
    for line in listed.stdout.splitlines():
        size = line.split("\t", 1)[0].split()[-1]
        total += int(size) if size.isdigit() else 0
    return total


def checkout(url: str, ref: str = "", *, user=None, heartbeat: Callable[[], None] | None = None,
             log: Callable[[str], None] | None = None) -> Checkout:
    """Clone `url` at `ref` (a branch, tag or commit; default HEAD) as `user` may, and tar the tree.

    Runs in a worker: the URL is checked again here (the settings or the name's addresses may have changed since
    it was asked for). `heartbeat` is called every few seconds while git runs, `log` with each step.
    """
    say = log or (lambda line: None)
    url, ref = validate_url(url, user), validate_ref(ref)
    redacted = redact_url(url)
    scheme = urlsplit(url).scheme.lower()
    config = _protocol_config(user)
    if scheme != FILE_SCHEME:
        config += _pinned_resolve(url, resolve_url(url, user))
    allowed = [*NETWORK_SCHEMES, *([FILE_SCHEME] if file_urls_allowed(user) else [])]
    run = _Run(deadline=time.monotonic() + settings.GIT_TIMEOUT, max_bytes=settings.CONSOLE_MAX_UNPACKED_BYTES,
               config=config, allowed_protocols=":".join(allowed), heartbeat=heartbeat)
    scratch = Path(tempfile.mkdtemp(prefix="git-", dir=scratch_dir()))
    try:
        tree = scratch / "tree"
        say(f"Cloning {redacted}")
        cloned = run.git(["clone", "--quiet", "--no-checkout", "--", url, str(tree)], watch=scratch)
        if cloned.returncode != 0:
            raise GitError(f"Cannot clone {redacted}: {_last_line(cloned.stderr, url, redacted)}")
        target = ref or "HEAD"
        resolved = run.git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{target}^{{commit}}"],
                           cwd=tree)
        if resolved.returncode != 0:
            # A branch of the remote that is not checked out locally is known as origin/<branch>.
            resolved = run.git(["rev-parse", "--verify", "--quiet", f"origin/{target}^{{commit}}"], cwd=tree)
        if resolved.returncode != 0:
            raise GitError(f"The ref {target!r} is not in {redacted}.")
        commit = resolved.stdout.strip()
        # A few compressed objects can check out to any size: count the tree before writing it.
        if _tree_bytes(run, tree, commit) > run.max_bytes:
            raise GitError(f"The files of {commit[:12]} are larger than {run.max_bytes:,} bytes.")
        say(f"Checking out {commit}")
        checked_out = run.git(["checkout", "--quiet", "--detach", commit], cwd=tree)
        if checked_out.returncode != 0:
            raise GitError(f"Cannot check out {target!r}: {_last_line(checked_out.stderr, url, redacted)}")
        commit_time = int(run.git(["show", "-s", "--format=%ct", commit], cwd=tree).stdout.strip() or 0)
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
