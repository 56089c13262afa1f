"""A Dockerfile read once, with dockerfile-parse: its stages, the images it names and the URLs it fetches.

Everything that asks "which images does this Dockerfile start from" or "what does it download" reads it here, so
line continuations, the escape directive and `ARG` substitution are handled one way everywhere.
"""

from __future__ import annotations

import io
import re
import shlex
from dataclasses import dataclass, field

from dockerfile_parse import DockerfileParser

# An instruction's flags come before its arguments: `--from=x`, `--mount=type=bind,from=y,target=/z`.
_FLAG = re.compile(r"^--([a-z-]+)(?:=(.*))?$", re.IGNORECASE)
_REMOTE = re.compile(r"^(?:https?|git|ssh)://|^git@", re.IGNORECASE)
# BuildKit's own name for "no image at all".
SCRATCH = "scratch"


@dataclass(frozen=True)
class ImageUse:
    """One place where the Dockerfile reads an image: `FROM`, `COPY --from`, `RUN --mount=...,from=`."""

    line: int
    how: str
    reference: str
    # The name as the Dockerfile writes it, before ARG substitution (`img:$V`).
    written: str = ""

    def where(self) -> str:
        return f"line {self.line} ({self.how} {self.reference})"


@dataclass(frozen=True)
class RemoteSource:
    line: int
    instruction: str
    url: str


@dataclass
class Dockerfile:
    instructions: list[dict] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    image_uses: list[ImageUse] = field(default_factory=list)
    remote_sources: list[RemoteSource] = field(default_factory=list)
    # The ids of the secrets its RUN steps mount (`--mount=type=secret,id=NAME`), and every ARG it declares.
    secret_mounts: set[str] = field(default_factory=set)
    declared_args: set[str] = field(default_factory=set)

    @property
    def base_images(self) -> list[str]:
        """The images named by `FROM` that are not earlier stages, in order, without repeats."""
        seen: list[str] = []
        for use in self.image_uses:
            if use.how == "FROM" and use.reference not in seen:
                seen.append(use.reference)
        return seen


def _split(value: str) -> list[str]:
    try:
        return shlex.split(value, posix=True)
    except ValueError:
        return value.split()


def _flags(words: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    flags = []
    while words and (match := _FLAG.match(words[0])):
        flags.append((match.group(1).lower(), match.group(2) or ""))
        words = words[1:]
    return flags, words


def _substitute(text: str, variables: dict[str, str]) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        default = match.group(3)
        found = variables.get(name)
        if found is None or found == "":
            return default if default is not None else ""
        return found

    return re.sub(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\})", value, text)


# `# escape=``, honoured only among the parser directives before anything else.
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z]+)\s*=\s*(.*?)\s*$")


def without_syntax_directive(text: str) -> str:
    """The text with a leading `# syntax=` parser directive made a plain comment: the engine's built-in Dockerfile
    frontend builds it, never a frontend image the Dockerfile names (it would be pulled and run in the builder)."""
    lines = text.splitlines(keepends=True)
    for number, raw in enumerate(lines):
        match = _DIRECTIVE.match(raw.strip())
        if not match:
            break
        if match.group(1).lower() == "syntax":
            lines[number] = "# (syntax directive ignored by the console)" + ("\n" if raw.endswith("\n") else "")
    return "".join(lines)


def escape_of(text: str) -> str:
    """The line-continuation character: `\\`, or what a leading `# escape=` directive sets (only `\\` or `` ` ``)."""
    escape = "\\"
    for raw in text.splitlines():
        match = _DIRECTIVE.match(raw.strip())
        if not match:
            break
        if match.group(1).lower() == "escape" and match.group(2) in {"\\", "`"}:
            escape = match.group(2)
    return escape


def _as_docker_reads_it(text: str) -> str:
    """The text with each empty line inside a continued instruction turned into a comment line.

    Docker skips empty lines within a continuation (with a warning); dockerfile-parse ends the instruction there
    and reads the next line as an instruction of its own. A comment line is skipped by both, and keeps every line
    number where it was."""
    escape = escape_of(text)
    lines = text.splitlines(keepends=True)
    continued = False
    for number, raw in enumerate(lines):
        stripped = raw.strip()
        if continued and not stripped:
            lines[number] = "#" + raw
            continue
        if continued and stripped.startswith("#"):
            continue
        if not continued and (not stripped or stripped.startswith("#")):
            continue
        continued = raw.rstrip().endswith(escape)
    return "".join(lines)


def parse(text: str, build_args: dict[str, str] | None = None) -> Dockerfile:
    """Read a Dockerfile's text. `build_args` fill the `ARG`s before the first `FROM`, as the builder does."""
    parser = DockerfileParser(fileobj=io.BytesIO(_as_docker_reads_it(text).encode("utf-8", "replace")))
    result = Dockerfile(instructions=[item for item in parser.structure if item["instruction"] != "COMMENT"])
    build_args = build_args or {}
    global_args: dict[str, str] = {}
    stage_args: dict[str, str] = {}
    seen_from = False
    for item in result.instructions:
        instruction, line = item["instruction"].upper(), item["startline"] + 1
        words = _split(item["value"])
        if instruction == "ARG":
            for word in words:
                name, has_default, default = word.partition("=")
                result.declared_args.add(name)
                chosen = build_args.get(name, default if has_default else None)
                if not seen_from:
                    global_args[name] = chosen or ""
                else:
                    stage_args[name] = chosen if chosen is not None else global_args.get(name, "")
            continue
        if instruction == "FROM":
            seen_from = True
            stage_args = {}
            _, rest = _flags(words)
            written = rest[0] if rest else ""
            reference = _substitute(written, global_args)
            if reference.lower() not in result.stages and reference.lower() != SCRATCH:
                result.image_uses.append(ImageUse(line, "FROM", reference, written))
            if len(rest) >= 3 and rest[1].upper() == "AS":
                result.stages.append(rest[2].lower())
            else:
                result.stages.append(f"#{len(result.stages)}")
            continue
        variables = {**global_args, **stage_args}
        flags, rest = _flags(words)
        if instruction in ("COPY", "ADD"):
            for name, value in flags:
                if name == "from":
                    _add_image_use(result, line, "COPY --from", _substitute(value, variables), value)
            if instruction == "ADD":
                result.remote_sources.extend(
                    RemoteSource(line, instruction, word) for word in rest[:-1] if _REMOTE.match(word)
                )
        elif instruction == "RUN":
            for name, value in flags:
                if name != "mount":
                    continue
                options = dict(part.partition("=")[::2] for part in value.split(","))
                if options.get("type", "").lower() == "secret":
                    # BuildKit's default id is the target's file name (/run/secrets/<id> by default).
                    target = options.get("target") or options.get("dst") or options.get("destination") or ""
                    secret_id = options.get("id") or target.rstrip("/").rsplit("/", 1)[-1]
                    if secret_id:
                        result.secret_mounts.add(secret_id)
                if options.get("from"):
                    _add_image_use(result, line, "RUN --mount from=", _substitute(options["from"], variables),
                                   options["from"])
    return result


def _add_image_use(result: Dockerfile, line: int, how: str, reference: str, written: str) -> None:
    # A stage is named by its name or its index; anything else is an image.
    lowered = reference.lower()
    if lowered in result.stages or (lowered.isdigit() and int(lowered) < len(result.stages)):
        return
    result.image_uses.append(ImageUse(line, how, reference, written))


def rewrite_image_uses(text: str, build_args: dict[str, str] | None, replacement: dict[str, str]) -> str:
    """The Dockerfile with every image it reads (FROM, COPY --from, RUN --mount from=) replaced by
    `replacement[reference]` — the engine id the console checked — so the engine never resolves a name itself.

    Each rewritten instruction is written on one line, followed by as many empty lines as its continuation lines
    took, so the engine's line numbers in errors stay the user's.
    """
    parsed = parse(text, build_args)
    uses_by_line: dict[int, list[ImageUse]] = {}
    for use in parsed.image_uses:
        uses_by_line.setdefault(use.line, []).append(use)
    lines = text.splitlines(keepends=True)
    for item in reversed(parsed.instructions):
        uses = uses_by_line.get(item["startline"] + 1)
        if not uses:
            continue
        rendered = _render(item, list(uses), replacement, parsed.stages)
        span = item["endline"] - item["startline"]
        lines[item["startline"]:item["endline"] + 1] = [rendered + "\n"] + ["\n"] * span
    return "".join(lines)


def _render(item: dict, uses: list[ImageUse], replacement: dict[str, str], stages: list[str]) -> str:
    instruction = item["instruction"].upper()
    words = _split(item["value"])
    flags, rest = _flags(words)
    flag_words = words[:len(flags)]
    if instruction == "FROM":
        rest = [replacement[uses[0].reference], *rest[1:]]
        return " ".join(["FROM", *map(shlex.quote, flag_words), *rest])

    def swap(value: str) -> str:
        # Stages stay as they are; each other image use is the next one recorded for this line, in order.
        lowered = value.lower()
        if lowered in stages or (lowered.isdigit() and int(lowered) < len(stages)) or not uses:
            return value
        return replacement[uses.pop(0).reference]

    rewritten = []
    for word, (name, value) in zip(flag_words, flags, strict=True):
        if name == "from":
            word = f"--from={swap(value)}"
        elif name == "mount":
            parts = []
            for part in value.split(","):
                key, _, option = part.partition("=")
                parts.append(f"from={swap(option)}" if key == "from" else part)
            word = "--mount=" + ",".join(parts)
        rewritten.append(shlex.quote(word))
    # The rest of the instruction is kept as the builder would have read it (continuations joined).
    arguments = item["value"]
    for word in flag_words:
        arguments = arguments.split(word, 1)[1] if word in arguments else arguments
    return " ".join([instruction, *rewritten]) + " " + arguments.strip()


_LEADING_FLAGS = re.compile(r"^((?:--\S+\s+)*)(.*)$", re.S)
_TARGET_KEYS = ("target", "dst", "destination")


def rewrite_secret_mounts(text: str, build_args: dict[str, str] | None, ids: dict[str, str]) -> str:
    """The Dockerfile with each `RUN --mount=type=secret` of a secret in `ids` mounting `ids[name]` instead, at
    the path it mounted before (`/run/secrets/<name>` unless it gave a target). The console gives each owner's
    secret an id of its own so that BuildKit's cache, shared by the engine's users, never serves one user's step
    that read a secret to another (the secret's value is not in the step's cache key; its id is).

    A rewritten RUN is written on one line, followed by as many empty lines as its continuation lines took."""
    parsed = parse(text, build_args)
    lines = text.splitlines(keepends=True)
    for item in reversed(parsed.instructions):
        if item["instruction"].upper() != "RUN":
            continue
        match = _LEADING_FLAGS.match(item["value"])
        flags, command = match.group(1).split(), match.group(2)
        changed = False
        for position, flag in enumerate(flags):
            if not flag.lower().startswith("--mount="):
                continue
            parts = [part.partition("=") for part in flag[len("--mount="):].split(",")]
            options = {key.lower(): value for key, _, value in parts}
            if options.get("type", "").lower() != "secret":
                continue
            target = next((options[key] for key in _TARGET_KEYS if options.get(key)), "")
            name = options.get("id") or target.rstrip("/").rsplit("/", 1)[-1]
            if name not in ids:
                continue
            kept = [f"{key}{sep}{value}" for key, sep, value in parts if key.lower() not in ("id", *_TARGET_KEYS)]
            flags[position] = "--mount=" + ",".join([*kept, f"id={ids[name]}",
                                                      f"target={target or '/run/secrets/' + name}"])
            changed = True
        if changed:
            span = item["endline"] - item["startline"]
            rendered = " ".join(["RUN", *flags, command])
            lines[item["startline"]:item["endline"] + 1] = [rendered + "\n"] + ["\n"] * span
    return "".join(lines)
