"""An image history entry's `CreatedBy` as the Dockerfile instruction a user wrote, and an image config's
command as Docker shows it.

The builders write their own forms: the classic builder `/bin/sh -c #(nop)  ENV X=1` for an instruction that
runs nothing and `|1 ARG=v /bin/sh -c make` for a RUN; BuildKit `ENV X=1` and `RUN /bin/sh -c make # buildkit`.
Both write lists the way Go prints them (`CMD ["sh" "-c" "x"]`, `EXPOSE map[80/tcp:{}]`, `VOLUME [/data]`).
"""

from __future__ import annotations

import json
import re

INSTRUCTIONS = frozenset({
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD",
    "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
})
BUILDKIT_MARKER = " # buildkit"
NOP_MARKER = "#(nop)"
# The shells a shell-form RUN is handed to: the default ones and the usual SHELL choices.
_SHELL = re.compile(r"^(?:(?:/usr)?/bin/(?:sh|bash|ash|dash)(?: -o pipefail)? -[a-z]*c|cmd /S /C) ")
# Build args the builders put before a RUN's command: `|2 A=1 B=2 `.
_BUILD_ARGS = re.compile(r"^\|(\d+) ")
_GO_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
# The classic builder's COPY/ADD: `file:<sha256> in /dest` (the sources are gone, only their hash is left).
_CLASSIC_COPY = re.compile(r"^((?:--\S+ )*(?:file|dir|multi):\S+) in (.+)$")


def go_list(text: str) -> list[str] | None:
    """`["sh" "-c" "x"]` (a Go string slice as the builders print it) as a list; None when it is not one."""
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    inner = text[1:-1].strip()
    items, position = [], 0
    for match in _GO_STRING.finditer(inner):
        if inner[position:match.start()].strip(" ,"):
            return None
        try:
            items.append(json.loads(match.group()))
        except ValueError:
            items.append(match.group()[1:-1])
        position = match.end()
    if inner[position:].strip(" ,"):
        return None
    return items


def exec_form(command: list[str] | str | None) -> str:
    """A command (Cmd, Entrypoint, a healthcheck's test) as a Dockerfile's exec form: `["sh", "-c", "x"]`."""
    if command is None:
        return ""
    if isinstance(command, str):
        return command
    return json.dumps(list(command), ensure_ascii=False)


def _strip_build_args(command: str) -> str:
    match = _BUILD_ARGS.match(command)
    if not match:
        return command
    rest = command[match.end():]
    for _ in range(int(match.group(1))):
        rest = rest.split(" ", 1)[1] if " " in rest else ""
    return rest


def _run_text(command: str) -> str:
    """A RUN's command as written: build args and the shell removed, mount flags kept."""
    command = _strip_build_args(command)
    flags = []
    while command.startswith("--"):
        flag, _, command = command.partition(" ")
        flags.append(flag)
    command = _strip_build_args(command)
    shell = _SHELL.match(command)
    if shell:
        command = command[shell.end():]
    return " ".join(["RUN", *flags, command]).rstrip()


def _command_text(keyword: str, rest: str) -> str:
    items = go_list(rest)
    if items is None and keyword == "SHELL" and rest.startswith("[") and rest.endswith("]"):
        # BuildKit prints SHELL's list unquoted: `SHELL [/bin/bash -o pipefail -c]`.
        items = rest[1:-1].split()
    if items is None:
        return f"{keyword} {rest}"
    # `CMD x` is stored as ["/bin/sh", "-c", "x"]: shown as the shell form most Dockerfiles use.
    if keyword in ("CMD", "ENTRYPOINT") and len(items) == 3 and items[:2] == ["/bin/sh", "-c"]:
        return f"{keyword} {items[2]}"
    return f"{keyword} {exec_form(items)}"


def _healthcheck_text(rest: str) -> str:
    # `&{["CMD-SHELL" "curl -f localhost"] "30s" "3s" "0s" "0s" '\x03'}`: the test, the durations, the retries.
    body = rest.removeprefix("&{").removesuffix("}")
    end = body.find("]")
    test = go_list(body[: end + 1]) if body.startswith("[") and end > 0 else None
    if not test:
        return f"HEALTHCHECK {rest}"
    if test[0] == "NONE":
        return "HEALTHCHECK NONE"
    options = []
    durations = re.findall(r'"(\d[^"]*)"', body[end + 1:])
    for name, value in zip(("interval", "timeout", "start-period", "start-interval"), durations, strict=False):
        if value not in ("0s", "0"):
            options.append(f"--{name}={value}")
    retries = re.search(r"(?:'\\x([0-9a-f]{2})'|\s(\d+))\s*$", body)
    if retries:
        count = int(retries.group(1), 16) if retries.group(1) else int(retries.group(2))
        if count:
            options.append(f"--retries={count}")
    command = test[1] if test[0] == "CMD-SHELL" and len(test) == 2 else exec_form(test[1:])
    return " ".join(["HEALTHCHECK", *options, "CMD", command])


def _instruction_text(keyword: str, rest: str) -> str:
    rest = rest.strip()
    if keyword == "RUN":
        return _run_text(rest)
    if keyword in ("CMD", "ENTRYPOINT", "SHELL"):
        return _command_text(keyword, rest)
    if keyword == "EXPOSE" and rest.startswith("map[") and rest.endswith("]"):
        return "EXPOSE " + " ".join(port.removesuffix(":{}") for port in rest[4:-1].split())
    if keyword == "VOLUME" and rest.startswith("[") and rest.endswith("]"):
        return "VOLUME " + rest[1:-1].strip()
    if keyword == "HEALTHCHECK":
        return _healthcheck_text(rest)
    if keyword in ("COPY", "ADD"):
        classic = _CLASSIC_COPY.match(rest)
        if classic:
            return f"{keyword} {classic.group(1)} {classic.group(2).strip()}"
    return f"{keyword} {rest}".rstrip()


def instruction_text(created_by: str) -> str:
    """The Dockerfile instruction that made a history entry, as a user wrote it: `ENV X=1`, `RUN make`,
    `CMD ["python", "app.py"]`. What neither builder wrote (docker commit, other tools) comes back trimmed."""
    text = (created_by or "").strip()
    if not text:
        return ""
    text = text.removesuffix(BUILDKIT_MARKER.strip()).rstrip() if text.endswith(BUILDKIT_MARKER) else text
    if NOP_MARKER in text:
        text = text.split(NOP_MARKER, 1)[1].strip()
        keyword, _, rest = text.partition(" ")
        return _instruction_text(keyword.upper(), rest) if keyword.upper() in INSTRUCTIONS else text
    keyword, _, rest = text.partition(" ")
    if keyword in INSTRUCTIONS:
        return _instruction_text(keyword, rest)
    # The classic builder writes a RUN as its command alone: `/bin/sh -c make`, `|1 A=1 /bin/sh -c make`.
    return _run_text(text)


def _duration(nanoseconds: int) -> str:
    seconds = nanoseconds / 1_000_000_000
    return f"{seconds:g}s"


def healthcheck_text(healthcheck: dict | None) -> str:
    """An image config's Healthcheck ({"Test": [...], "Interval": ns, ...}) as the Dockerfile's HEALTHCHECK
    arguments: `--interval=30s CMD curl -f localhost`, or `NONE`."""
    if not healthcheck or not healthcheck.get("Test"):
        return ""
    test = list(healthcheck["Test"])
    if test[0] == "NONE":
        return "NONE"
    options = [f"--{name}={_duration(healthcheck[key])}"
               for key, name in (("Interval", "interval"), ("Timeout", "timeout"),
                                 ("StartPeriod", "start-period"), ("StartInterval", "start-interval"))
               if healthcheck.get(key)]
    if healthcheck.get("Retries"):
        options.append(f"--retries={healthcheck['Retries']}")
    command = test[1] if test[0] == "CMD-SHELL" and len(test) == 2 else exec_form(test[1:])
    return " ".join([*options, "CMD", command])
