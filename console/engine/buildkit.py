"""Builds on the engine's BuildKit, driven through the Docker CLI's BuildKit client.

The console talks to BuildKit the way a user does: it runs a Docker CLI that can BuildKit-build (`docker buildx
build --load`, or a CLI 20.10 `docker build` with DOCKER_BUILDKIT=1) with the console's filtered context tar on
standard input, `--progress=plain` and `--iidfile`. The CLI reaches the same engine as the `Engine` object
(DOCKER_HOST from its URL, its TLS material or ssh key written to a private folder for the CLI), and the plain
progress output is parsed line by line into events (`PlainProgressParser`).

What a build prints cannot pass for the progress printer's own lines: BuildKit's plain printer splits a step's
output on "\\n" only and starts every piece with `#N <seconds> `, so a line the CLI prints is either the printer's
(a vertex's name, `#N DONE 0.4s`, `#N CACHED`, `#N ERROR: ...`, a status) or a step's (`#N 0.123 text`). The
parser splits on "\\n" only too ("\\r" and the other characters `str.splitlines` breaks on stay inside the
text). One case needs care: when a step's last output has no final newline, the printer writes `#N DONE 1.2s`
right after it on the same line; a step that prints that text itself is told apart by what follows (a vertex
that is not done yet always prints another line of its own, at least `#N ...` or its end).

Secrets reach the CLI as files only (`--secret id=NAME,src=FILE`, 0600 in a 0700 folder under /dev/shm removed
when the build ends), never in its arguments or environment; `remove_stale_folders()` removes the folders of a
process killed mid-build. The CLI runs in its own process group, its environment made here (nothing of the
worker's own), and is killed with SIGKILL when the worker process dies (PR_SET_PDEATHSIG, set for a child started
by one long-lived thread, since the kernel follows the thread that forked). BuildKit cancels a build when the
CLI's session goes: `abort()` sends SIGINT (buildx cancels at once; CLI 20.10 only counts it) and SIGKILL
ABORT_GRACE_SECONDS later.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import ctypes
import functools
import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings

from console.engine.core import Engine, EngineBadRequest, EngineError, EngineUnavailable, parse_ssh_host_key

# The engine API version from which an engine runs BuildKit builds (Docker 18.09).
BUILDKIT_MIN_API = (1, 39)
# After SIGINT, how long the CLI has to stop before its process group is killed.
ABORT_GRACE_SECONDS = 3.0
# The longest progress line handed to the parser; the rest of a longer one is cut (its end is kept).
MAX_LINE = 64 * 1024
LINE_TAIL = 256
# The longest error message kept from the CLI's output.
MAX_ERROR = 2000
CLI_PROBE_TIMEOUT = 20
SYSTEM_CLI = "/usr/bin/docker"
SECRET_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")


# -- events ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VertexStarted:
    """A vertex shown for the first time: `#N [stage i/n] INSTRUCTION`, `#N [i/n] ...`, `#N [internal] ...` or
    another name (`#N exporting to image`). `instruction` is the Dockerfile instruction of a step ("RUN make"),
    blank for the rest; `stage` is BuildKit's name of the step's stage ("base", "stage-2") in a multi-stage
    build, None in a single-stage one."""

    vertex: int
    name: str
    stage: str | None = None
    step: int | None = None
    total: int | None = None
    instruction: str = ""
    internal: bool = False


@dataclass(frozen=True)
class VertexLog:
    """One line a vertex printed (a RUN's output), without the `#N <seconds> ` prefix. `continued`: the text
    continues the vertex's previous line (the printer cut a line that had no newline yet, and printed it again
    in full later: only the new part is given)."""

    vertex: int
    text: str
    continued: bool = False


@dataclass(frozen=True)
class VertexStatus:
    """A progress status of a vertex (`#7 exporting layers 0.1s done`, `#7 writing image sha256:... done`)."""

    vertex: int
    text: str


@dataclass(frozen=True)
class VertexCached:
    vertex: int


@dataclass(frozen=True)
class VertexDone:
    vertex: int
    seconds: float | None


@dataclass(frozen=True)
class VertexError:
    vertex: int
    message: str


@dataclass(frozen=True)
class VertexCanceled:
    vertex: int


@dataclass(frozen=True)
class BuildError:
    """The CLI's final error (`failed to solve ...`, `executor failed running ...`, `ERROR: ...`)."""

    message: str


@dataclass(frozen=True)
class Message:
    """A line the CLI printed outside any vertex that is not known as an error (a warning, a log record)."""

    text: str


Event = (VertexStarted | VertexLog | VertexStatus | VertexCached | VertexDone | VertexError | VertexCanceled
         | BuildError | Message)


# -- the plain progress parser -----------------------------------------------------------------------------

_VERTEX_LINE = re.compile(r"#(\d+) (.*)", re.S)
_LOG = re.compile(r"(-?\d+\.\d+) (.*)", re.S)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_DONE = re.compile(r"DONE(?: (\d+(?:\.\d+)?)s)?")
_STEP = re.compile(r"\[(?:(?P<stage>\S+) )?(?P<step>\d+)/(?P<total>\d+)\] (?P<instruction>.*)", re.S)
_INTERNAL = "[internal] "
_ERROR_BLOCK = "------"
_ERROR_PREFIXES = ("error:", "ERROR:", "failed to solve", "executor failed", "failed to compute cache key")
# What the CLI says when it cannot reach the engine, and the reasons told in the console's fixed words.
_UNREACHABLE = ("failed to dial grpc", "cannot connect to the docker daemon", "error during connect")
_CONNECTION_REASONS = (
    ("host key verification failed", "its ssh host key is not the one recorded for it"),
    ("permission denied (publickey", "the ssh server refused the key"),
    ("connection refused", "connection refused"),
    ("no such file or directory", "no such socket"),
    ("timed out", "timed out"),
    ("certificate", "TLS failure"),
    ("no route to host", "no route to host"),
)
# logrus records the CLI writes itself (`time="..." level=error msg="got 3 SIGTERM/SIGINTs, forcing shutdown"`).
_LOG_RECORD = re.compile(r'time="[^"]*" level=')


@dataclass
class _Vertex:
    awaiting_header: bool = True
    resumed: bool = False
    last_log: tuple[str, str] | None = None


@dataclass
class _Pending:
    """A step's line that ends with what the printer writes when the step ends after output with no newline."""

    vertex: int
    full: str
    before: str
    seconds: float | None
    continued: bool


class PlainProgressParser:
    """BuildKit's `--progress=plain` output, one line at a time (split on "\\n" only, without it), into events.

    `feed(line)` returns the events the line completes (usually one or none; a line that may hold a step's end
    glued to its output waits for the next line), `close()` those still held at the end of the output."""

    def __init__(self) -> None:
        self._vertices: dict[int, _Vertex] = {}
        self._pending: _Pending | None = None
        self._in_error_block = False
        self._failed = False

    def feed(self, line: str) -> list[Event]:
        if line.endswith("\n"):
            line = line[:-1]
        events: list[Event] = []
        match = _VERTEX_LINE.fullmatch(line)
        if self._pending is not None:
            pending, self._pending = self._pending, None
            if match and int(match.group(1)) == pending.vertex:
                # The vertex printed more: the "DONE" was the step's own text.
                events.append(VertexLog(pending.vertex, pending.full, pending.continued))
            else:
                if pending.before or not pending.continued:
                    events.append(VertexLog(pending.vertex, pending.before, pending.continued))
                events.append(VertexDone(pending.vertex, pending.seconds))
        if self._in_error_block:
            # The summary of a failed vertex repeats its name and its last lines: all seen already.
            if line == _ERROR_BLOCK:
                self._in_error_block = False
            return events
        if line == _ERROR_BLOCK:
            self._in_error_block = self._failed = True
            return events
        if match is None:
            events.extend(self._outside(line))
            return events
        events.extend(self._vertex_line(int(match.group(1)), match.group(2)))
        return events

    def close(self) -> list[Event]:
        events: list[Event] = []
        if self._pending is not None:
            pending, self._pending = self._pending, None
            if pending.before or not pending.continued:
                events.append(VertexLog(pending.vertex, pending.before, pending.continued))
            events.append(VertexDone(pending.vertex, pending.seconds))
        return events

    def _outside(self, line: str) -> list[Event]:
        text = line.strip()
        if not text:
            return []
        if _LOG_RECORD.match(text):
            return [Message(text)]
        if self._failed or text.startswith(_ERROR_PREFIXES):
            for prefix in ("ERROR: ", "error: "):
                text = text.removeprefix(prefix)
            return [BuildError(text)]
        return [Message(text)]

    def _vertex_line(self, number: int, rest: str) -> list[Event]:
        vertex = self._vertices.get(number)
        if vertex is None or vertex.awaiting_header:
            # The first line of a vertex the printer switches to is its name (again, when it resumes one).
            first = vertex is None
            if first:
                vertex = self._vertices[number] = _Vertex()
            vertex.awaiting_header = False
            vertex.resumed = not first
            return [_started(number, rest)] if first else []
        if rest == "...":
            # The printer leaves this vertex for another: its name is printed again when it comes back.
            vertex.awaiting_header = True
            return []
        log = _LOG.fullmatch(rest)
        if log is not None:
            return self._log(number, vertex, log.group(1), log.group(2))
        if _DIGEST.fullmatch(rest):
            # The vertex's digest, printed under its name.
            return []
        vertex.resumed = False
        done = _DONE.fullmatch(rest)
        if done is not None:
            return [VertexDone(number, float(done.group(1)) if done.group(1) else None)]
        if rest == "CACHED":
            return [VertexCached(number)]
        if rest == "CANCELED":
            return [VertexCanceled(number)]
        if rest == "ERROR" or rest.startswith("ERROR: "):
            self._failed = True
            return [VertexError(number, rest.removeprefix("ERROR").removeprefix(": "))]
        return [VertexStatus(number, rest)]

    def _log(self, number: int, vertex: _Vertex, seconds: str, text: str) -> list[Event]:
        continued = False
        full = text
        if vertex.resumed and vertex.last_log is not None:
            last_seconds, last_text = vertex.last_log
            if seconds == last_seconds and last_text and text.startswith(last_text):
                # The line cut when the printer left this vertex, printed again in full with what followed.
                text, continued = text[len(last_text):], True
        vertex.resumed = False
        vertex.last_log = (seconds, full)
        glued = re.search(rf"#{number} DONE(?: (\d+(?:\.\d+)?)s)?\Z", text)
        if glued is not None:
            self._pending = _Pending(number, text, text[:glued.start()],
                                     float(glued.group(1)) if glued.group(1) else None, continued)
            return []
        if continued and not text:
            return []
        return [VertexLog(number, text, continued)]


def _started(number: int, name: str) -> VertexStarted:
    step = _STEP.fullmatch(name)
    if step is not None:
        return VertexStarted(number, name, stage=step.group("stage"), step=int(step.group("step")),
                             total=int(step.group("total")), instruction=step.group("instruction"))
    if name.startswith(_INTERNAL):
        return VertexStarted(number, name, internal=True)
    return VertexStarted(number, name)


def split_lines(chunks: Iterable[bytes], max_line: int = MAX_LINE) -> Iterator[str]:
    """Lines of a byte stream, split on b"\\n" only, decoded as UTF-8 (bad bytes replaced), each as soon as its
    newline arrives. A line longer than `max_line` keeps its start and its last LINE_TAIL bytes (where a step's
    end may be glued on), with a note of how much was cut between."""
    head = bytearray()
    tail = bytearray()
    cut = 0
    for chunk in chunks:
        start = 0
        while start < len(chunk):
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if len(head) < max_line:
                room = max_line - len(head)
                head += piece[:room]
                piece = piece[room:]
            if piece:
                tail += piece
                if len(tail) > LINE_TAIL:
                    cut += len(tail) - LINE_TAIL
                    del tail[:-LINE_TAIL]
            if end < 0:
                break
            yield _line(head, tail, cut)
            head, tail, cut = bytearray(), bytearray(), 0
            start = end + 1
    if head or tail:
        yield _line(head, tail, cut)


def _line(head: bytearray, tail: bytearray, cut: int) -> str:
    if not cut:
        return (bytes(head) + bytes(tail)).decode("utf-8", "replace")
    return (head.decode("utf-8", "replace") + f" [... {cut:,} bytes cut ...] "
            + tail.decode("utf-8", "replace"))


# -- the CLI -----------------------------------------------------------------------------------------------

def _clean_env() -> dict[str, str]:
    """What a probe of a CLI sees: the machine's PATH, nothing of its Docker set-up."""
    return {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8"}


def _runs(argv: list[str]) -> subprocess.CompletedProcess | None:
    with tempfile.TemporaryDirectory(prefix="console-cli-probe-") as home:
        env = {**_clean_env(), "HOME": home, "DOCKER_CONFIG": os.path.join(home, ".docker")}
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=CLI_PROBE_TIMEOUT, env=env,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            return None


def _has_buildx(binary: str) -> bool:
    result = _runs([binary, "buildx", "version"])
    return result is not None and result.returncode == 0


def _builtin_buildkit_client(binary: str) -> bool:
    """A CLI 19.03 or 20.10 builds with BuildKit itself given DOCKER_BUILDKIT=1; later ones need buildx."""
    result = _runs([binary, "--version"])
    if result is None or result.returncode != 0:
        return False
    version = re.search(r"Docker version (\d+)\.(\d+)", result.stdout)
    return version is not None and (19, 3) <= (int(version.group(1)), int(version.group(2))) <= (20, 10)


@functools.lru_cache(maxsize=8)
def _find_cli(configured: str) -> tuple[str, ...] | None:
    if configured:
        argv = shlex.split(configured)
        if not argv:
            return None
        if argv[-1] == "buildx":
            return (*argv, "build", "--load")
        if len(argv) == 1 and _has_buildx(argv[0]):
            return (argv[0], "buildx", "build", "--load")
        return (*argv, "build")
    docker = shutil.which("docker")
    if docker and _has_buildx(docker):
        return (docker, "buildx", "build", "--load")
    if os.access(SYSTEM_CLI, os.X_OK) and _builtin_buildkit_client(SYSTEM_CLI):
        return (SYSTEM_CLI, "build")
    return None


def buildkit_cli() -> list[str] | None:
    """The command that BuildKit-builds, before its options: settings.DOCKER_CLI when set (a path, or a path and
    `buildx`), else `docker buildx build --load` when the `docker` on PATH has buildx, else `/usr/bin/docker
    build` when that is a CLI 20.10 (run with DOCKER_BUILDKIT=1); None when there is none. Found once per
    process (per value of the setting)."""
    found = _find_cli(getattr(settings, "DOCKER_CLI", "") or "")
    return list(found) if found is not None else None


def engine_has_buildkit(engine: Engine) -> bool:
    """Whether the engine runs BuildKit builds: API 1.39 or later, and not a Windows engine."""
    with engine.errors("Reading the engine version"):
        version = engine.api.version()
    if not isinstance(version, dict):
        return False
    api = re.fullmatch(r"(\d+)\.(\d+)", str(version.get("ApiVersion") or ""))
    if api is None or (int(api.group(1)), int(api.group(2))) < BUILDKIT_MIN_API:
        return False
    return str(version.get("Os") or "").lower() != "windows"


# -- the private folders of builds ------------------------------------------------------------------------

# A build's folder: FOLDER_PREFIX, the pid of the process that ran the build, then random characters.
FOLDER_PREFIX = "console-buildkit-"
SHARED_MEMORY = "/dev/shm"


def _folders_root() -> str:
    """Where builds keep their private folders: in memory (/dev/shm) where there is one, so that a secret is never
    written to a disk; else the temporary folder."""
    if os.path.isdir(SHARED_MEMORY) and os.access(SHARED_MEMORY, os.W_OK | os.X_OK):
        return SHARED_MEMORY
    return tempfile.gettempdir()


def remove_stale_folders() -> list[str]:
    """Remove the private folders (secrets, keys) of builds whose process is gone: one killed mid-build could not
    remove its own. For a worker's start or the reaper; returns the folders removed."""
    removed = []
    root = _folders_root()
    with contextlib.suppress(OSError):
        for name in os.listdir(root):
            match = re.fullmatch(rf"{re.escape(FOLDER_PREFIX)}(\d+)-\w+", name)
            path = os.path.join(root, name)
            if match is None or not os.path.isdir(path) or os.path.islink(path):
                continue
            if int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- the request and the stream ----------------------------------------------------------------------------

@dataclass
class BuildkitRequest:
    """What a BuildKit build needs, in the console's words. `context` is the tar the CLI reads (in chunks),
    `dockerfile` a path inside it; `secrets` maps secret ids (`RUN --mount=type=secret,id=NAME`) to values."""

    context: Iterable[bytes]
    dockerfile: str = "Dockerfile"
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    secrets: dict[str, str] = field(default_factory=dict)
    cache_from: list[str] = field(default_factory=list)
    inline_cache: bool = False
    pull: bool = False
    # {registry host:port: (username, password)}: what the CLI logs in to the registries of `cache_from` with,
    # from a config.json in the build's private folder (the CLI fetches the registry's token with it).
    registry_logins: dict[str, tuple[str, str]] = field(default_factory=dict)


PR_SET_PDEATHSIG = 1


@functools.cache
def _prctl():
    # Loaded in the parent: a forked child of a threaded process should not dlopen.
    return ctypes.CDLL(None, use_errno=True).prctl


def _preexec(parent: int, prctl) -> None:
    """In the child, before exec: die with the thread that started it (the spawner's: the process's lifetime),
    and take SIGINT as it comes (a worker started from a shell's background job inherits it ignored)."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # The parent may have died before prctl: then nobody would kill this child.
    if os.getppid() != parent:
        os._exit(1)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)


class _Spawner:
    """One long-lived thread per process that starts every CLI. PR_SET_PDEATHSIG fires when the *thread* that
    forked the child ends, not the process: a CLI started by a short-lived thread (a watcher, a pool's thread)
    would be killed with it. Started from this thread, which ends only with the process, the CLI dies exactly
    when the worker does."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def run(self, function):
        with self._lock:
            # A forked process (a prefork worker) has no copy of its parent's thread.
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._serve, args=(self._queue,), name="buildkit-spawner",
                                                daemon=True)
                self._pid = os.getpid()
                self._thread.start()
            answer: concurrent.futures.Future = concurrent.futures.Future()
            self._queue.put((function, answer))
        return answer.result()

    @staticmethod
    def _serve(requests: queue.SimpleQueue) -> None:
        while True:
            function, answer = requests.get()
            try:
                answer.set_result(function())
            except BaseException as exc:
                answer.set_exception(exc)


_spawner = _Spawner()


def _write_private(path: str, text: str | bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(text.encode() if isinstance(text, str) else text)


def _known_hosts_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


class BuildkitStream:
    """One BuildKit build by the CLI. Iterate it for the events of its progress, live; after the iteration ends,
    `returncode`, `image_id` (blank unless it succeeded) and `error` tell how it went. `abort()` (from any thread)
    stops the build: SIGINT to the CLI's process group, SIGKILL ABORT_GRACE_SECONDS later; BuildKit cancels the
    build when the CLI's session ends. Stopping the iteration early aborts the build too. Use it as a context
    manager (or call close()) when it may not be iterated to its end: its private folder (secrets, keys) goes
    when the build ends."""

    def __init__(self, engine: Engine, request: BuildkitRequest, command: list[str]) -> None:
        self.engine, self.request = engine, request
        self.returncode: int | None = None
        self.image_id = ""
        self.error = ""
        self.aborted = threading.Event()
        self.context_error: BaseException | None = None
        self.events_seen = 0
        self.events_seen_vertex = False
        self._dial_failed = False
        self._dial_reason = ""
        self._lock = threading.Lock()
        self._errors: list[str] = []
        self._messages: list[str] = []
        self._closed = False
        self._iterated = False
        self._writer: threading.Thread | None = None
        self._kill_timer: threading.Timer | None = None
        self._folder = tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-", dir=_folders_root())
        try:
            os.chmod(self._folder, 0o700)
            argv, env = self._command(command)
            self._process = self._spawn(argv, env)
        except BaseException:
            shutil.rmtree(self._folder, ignore_errors=True)
            raise
        self._writer = threading.Thread(target=self._send_context, name="buildkit-context", daemon=True)
        self._writer.start()

    # -- the command line and its environment

    def _path(self, *names: str) -> str:
        return os.path.join(self._folder, *names)

    def _command(self, command: list[str]) -> tuple[list[str], dict[str, str]]:
        request = self.request
        home = self._path("home")
        os.mkdir(home, 0o700)
        env = {**_clean_env(), "HOME": home, "DOCKER_CONFIG": os.path.join(home, ".docker"), "DOCKER_BUILDKIT": "1"}
        env.update(self._engine_env())
        if request.registry_logins:
            os.mkdir(env["DOCKER_CONFIG"], 0o700)
            auths = {host: {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
                     for host, (username, password) in request.registry_logins.items()}
            _write_private(os.path.join(env["DOCKER_CONFIG"], "config.json"), json.dumps({"auths": auths}))
        argv = [*command, "--progress=plain", f"--iidfile={self._path('iid')}", f"--file={request.dockerfile}"]
        argv += [f"--tag={tag}" for tag in request.tags]
        argv += [f"--label={key}={value}" for key, value in request.labels.items()]
        argv += [f"--build-arg={key}={value}" for key, value in request.build_args.items()]
        if request.inline_cache:
            argv.append("--build-arg=BUILDKIT_INLINE_CACHE=1")
        argv += [f"--cache-from={reference}" for reference in request.cache_from]
        if request.target:
            argv.append(f"--target={request.target}")
        if request.no_cache:
            argv.append("--no-cache")
        if request.pull:
            argv.append("--pull")
        if request.secrets:
            secrets = self._path("secrets")
            os.mkdir(secrets, 0o700)
            for index, (name, value) in enumerate(request.secrets.items()):
                if not SECRET_ID.fullmatch(name):
                    raise EngineBadRequest(
                        f"A build secret's name must be letters, digits, '_', '.' or '-' (not {name[:40]!r})."
                    )
                path = os.path.join(secrets, f"secret-{index}")
                _write_private(path, value)
                argv.append(f"--secret=id={name},src={path}")
        argv.append("-")
        return argv, env

    def _engine_env(self) -> dict[str, str]:
        engine = self.engine
        url = engine.url
        scheme = urlsplit(url).scheme
        if scheme == "unix":
            return {"DOCKER_HOST": url}
        if scheme == "tcp":
            env = {"DOCKER_HOST": url}
            if engine.tls is not None:
                certs = self._path("tls")
                os.mkdir(certs, 0o700)
                for name, text in (("ca.pem", engine.tls.ca_cert), ("cert.pem", engine.tls.client_cert),
                                   ("key.pem", engine.tls.client_key)):
                    _write_private(os.path.join(certs, name), text)
                env.update(DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=certs)
            return env
        if scheme == "ssh":
            return self._ssh_env(url)
        raise EngineError(f"BuildKit builds cannot reach an engine at {engine.where}: unsupported address.")

    def _ssh_env(self, url: str) -> dict[str, str]:
        """ssh:// engines: the CLI runs `ssh`, which reads the user's ~/.ssh (from the passwd entry, not $HOME).
        With the engine's own material, `ssh` on the CLI's PATH is a wrapper that runs the system's ssh with a
        config of our own: the engine's key only, its recorded host key only, no agent, no ProxyCommand."""
        material = self.engine.ssh
        if material is None:
            # The operator's own engine (DOCKER_HOST=ssh://...): the machine's ssh set-up, as the SDK uses it.
            return {"DOCKER_HOST": url}
        if not material.host_key:
            raise EngineError(
                f"BuildKit builds over ssh need the host key of {self.engine.where} recorded first: "
                "check the host once so that the console records it."
            )
        ssh = shutil.which("ssh", path=os.environ.get("PATH", os.defpath))
        if ssh is None:
            raise EngineError("BuildKit builds over ssh need the ssh client, which is not installed here.")
        parts = urlsplit(url)
        try:
            host_key = parse_ssh_host_key(material.host_key)
        except ValueError as exc:
            raise EngineError(f"The recorded ssh host key of {self.engine.where} is unusable.") from exc
        folder = self._path("ssh")
        os.mkdir(folder, 0o700)
        key_path, known_hosts, config = (os.path.join(folder, name) for name in ("key", "known_hosts", "config"))
        key_text = material.private_key if material.private_key.endswith("\n") else material.private_key + "\n"
        _write_private(key_path, key_text)
        name = _known_hosts_name(parts.hostname or "", parts.port or 22)
        _write_private(known_hosts, f"{name} {host_key.get_name()} {host_key.get_base64()}\n")
        _write_private(config, "\n".join([
            "Host *",
            f"  IdentityFile {key_path}",
            "  IdentitiesOnly yes",
            "  IdentityAgent none",
            f"  UserKnownHostsFile {known_hosts}",
            "  GlobalKnownHostsFile /dev/null",
            "  StrictHostKeyChecking yes",
            "  CheckHostIP no",
            "  UpdateHostKeys no",
            "  BatchMode yes",
            "  ProxyCommand none",
            "  ProxyJump none",
            "  ControlMaster no",
            "  ControlPath none",
            "  PermitLocalCommand no",
            "  ConnectTimeout 15",
            "",
        ]))
        bin_folder = self._path("bin")
        os.mkdir(bin_folder, 0o700)
        wrapper = os.path.join(bin_folder, "ssh")
        fd = os.open(wrapper, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"#!/bin/sh\nexec {shlex.quote(ssh)} -F {shlex.quote(config)} \"$@\"\n")
        return {"DOCKER_HOST": url, "PATH": f"{bin_folder}:{os.environ.get('PATH', os.defpath)}"}

    def _spawn(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        parent = os.getpid()
        try:
            return _spawner.run(functools.partial(
                subprocess.Popen, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                env=env, cwd=self._folder, start_new_session=True, close_fds=True,
                preexec_fn=functools.partial(_preexec, parent, _prctl()),
            ))
        except OSError as exc:
            raise EngineError(f"Starting the BuildKit build failed: {argv[0]} could not be run "
                              f"({exc.strerror or type(exc).__name__}).") from exc

    # -- running

    def _send_context(self) -> None:
        stdin = self._process.stdin
        try:
            for chunk in self.request.context:
                if self.aborted.is_set():
                    # Ending the tar here would hand the CLI a shorter context as if it were whole.
                    self._signal(signal.SIGKILL)
                    return
                stdin.write(chunk)
        except (BrokenPipeError, ValueError):
            # The CLI stopped reading (it ended or was stopped): its output says why.
            pass
        except BaseException as exc:
            # A context cut short must not reach the engine as a complete tar: the build is killed instead.
            self.context_error = exc
            self._signal(signal.SIGKILL)
        finally:
            with contextlib.suppress(OSError, ValueError):
                stdin.close()

    def __iter__(self) -> Iterator[Event]:
        if self._iterated:
            raise RuntimeError("a BuildkitStream is iterated once")
        self._iterated = True
        parser = PlainProgressParser()
        finished = False
        try:
            for line in split_lines(self._chunks()):
                for event in parser.feed(line):
                    yield self._seen(event)
            for event in parser.close():
                yield self._seen(event)
            finished = True
        finally:
            if not finished:
                self.abort()
            self._finish()
        if self.context_error is not None:
            raise self.context_error
        if self._unreachable():
            raise EngineUnavailable(self.error)

    def _seen(self, event: Event) -> Event:
        self.events_seen += 1
        if isinstance(event, BuildError | Message):
            text = event.message if isinstance(event, BuildError) else event.text
            (self._errors if isinstance(event, BuildError) else self._messages).append(text)
            del self._messages[:-5]
            lowered = text.lower()
            if any(marker in lowered for marker in _UNREACHABLE):
                self._dial_failed = True
            for marker, reason in _CONNECTION_REASONS:
                if marker in lowered and not self._dial_reason:
                    self._dial_reason = reason
        else:
            self.events_seen_vertex = True
        return event

    def _unreachable(self) -> bool:
        """The CLI failed before any vertex, saying that it could not reach the engine."""
        return bool(self.returncode) and not self.events_seen_vertex and self._dial_failed

    def _chunks(self) -> Iterator[bytes]:
        fd = self._process.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except InterruptedError:
                continue
            if not chunk:
                return
            yield chunk

    def _finish(self) -> None:
        process = self._process
        try:
            process.wait()
        finally:
            with self._lock:
                self.returncode = process.returncode
                if self._kill_timer is not None:
                    self._kill_timer.cancel()
        if self._writer is not None:
            self._writer.join(timeout=ABORT_GRACE_SECONDS)
        with contextlib.suppress(OSError, ValueError):
            process.stdout.close()
        if self.returncode == 0:
            with contextlib.suppress(OSError):
                with open(self._path("iid")) as handle:
                    image_id = handle.read().strip()
                if IMAGE_ID.fullmatch(image_id):
                    self.image_id = image_id
        self.error = self._summary()
        self.close()

    def _summary(self) -> str:
        if self.returncode == 0 and self.image_id:
            return ""
        if self.context_error is not None:
            return "The build's context could not be sent."
        if self.aborted.is_set():
            return "The build was stopped."
        if self._unreachable():
            # The CLI's own words quote what the other side said (an ssh banner, a proxy): fixed words only.
            reason = f" ({self._dial_reason})" if self._dial_reason else ""
            return f"Building: the BuildKit client could not reach the Docker Engine at {self.engine.where}{reason}."
        if self._errors:
            return self._errors[-1][:MAX_ERROR]
        if self.returncode == 0:
            return "The build ended without naming its image."
        text = "; ".join(message for message in self._messages if not _LOG_RECORD.match(message))
        return (text or f"The BuildKit client failed (exit code {self.returncode}).")[:MAX_ERROR]

    def abort(self) -> None:
        """Stop the build (from any thread): SIGINT to the CLI's group, SIGKILL if it still runs a moment later."""
        self.aborted.set()
        if not self._signal(signal.SIGINT):
            return
        with self._lock:
            if self._kill_timer is None and self.returncode is None:
                self._kill_timer = threading.Timer(ABORT_GRACE_SECONDS, self._signal, args=(signal.SIGKILL,))
                self._kill_timer.daemon = True
                self._kill_timer.start()

    def _signal(self, number: int) -> bool:
        with self._lock:
            # Until it is waited for, the CLI's pid (its group's id) cannot be taken by another process.
            if self.returncode is not None or self._process.returncode is not None:
                return False
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, number)
            return True

    def close(self) -> None:
        """End the build if it still runs and remove its private folder (secrets, keys, the image id file)."""
        if self._closed:
            return
        if self.returncode is None:
            self._signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=ABORT_GRACE_SECONDS)
            with self._lock:
                self.returncode = self._process.returncode
        self._closed = True
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> BuildkitStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def start_build(engine: Engine, request: BuildkitRequest) -> BuildkitStream:
    """Start a BuildKit build of `request` on `engine` by the Docker CLI; iterate the answer for its events.

    Raises EngineError when no CLI can BuildKit-build or it cannot be started, EngineUnavailable when the engine
    does not answer (checked first, so that a stopped engine is told as such and not as a failed build).

    The CLI is killed (SIGKILL) when this process dies, whichever thread calls this."""
    command = buildkit_cli()
    if command is None:
        raise EngineError("BuildKit builds need a Docker CLI with BuildKit (docker buildx, or Debian's docker.io "
                          "CLI 20.10); none was found. Set DOCKER_CLI to its path.")
    engine.ping()
    return BuildkitStream(engine, request, command)
