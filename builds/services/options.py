"""Checking build options before anything is queued: tags, memory strings, CPU sets, targets, build args,
secrets, and which builder will run the build."""

from __future__ import annotations

import re

from django.conf import settings

from builds import access, dockerfile
from builds.constants import Builder, BuilderChoice
from builds.leakcheck import MIN_SECRET_LENGTH
from builds.models import Source
from builds.sources.context import ContextError, plan_dockerfile_text
from console import netpolicy, references, units
from console.errors import DomainError

CPUSET_PATTERN = re.compile(r"^\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*$")
# `docker build -t` refuses longer names.
TAG_MAX_LENGTH = 255
ARG_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The engine refuses less than 6 MB for a container.
MINIMUM_MEMORY = units.MINIMUM_MEMORY


class OptionError(DomainError):
    """A build option is wrong; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_tag(tag: str) -> str:
    """A name `docker build -t` takes: Distribution's reference grammar, a tag but no digest."""
    try:
        parsed = references.parse(tag)
    except references.InvalidReference:
        parsed = None
    if len(tag) > TAG_MAX_LENGTH or parsed is None or parsed.digest:
        raise OptionError("tags", f"{tag!r} is not a valid image name: use name[:tag], lower-case, like my-app:1.0.")
    return tag


def parse_memory(value: str | int | None) -> int | None:
    """`512m`, `1g`, `300000k` or a number of bytes, as bytes; None when not given."""
    if value in (None, ""):
        return None
    try:
        number = units.parse_memory(str(value))
    except units.UnitError:
        message = f"{value!r} is not a memory size: use a number with b, k, m or g (512m)."
        raise OptionError("memory_limit", message) from None
    if number < MINIMUM_MEMORY:
        raise OptionError("memory_limit", "The engine needs at least 6m of memory for a build step.")
    return number


def build_memory(value: str | int | None) -> int | None:
    """A build's memory limit in bytes: its own, else BUILD_DEFAULT_MEMORY (none when that is empty too)."""
    return parse_memory(value or settings.BUILD_DEFAULT_MEMORY)


def check_cpuset(value: str) -> str:
    if value and not CPUSET_PATTERN.match(value):
        raise OptionError("cpuset_cpus", f"{value!r} is not a CPU set: use numbers and ranges like 0-1,3.")
    return value


def check_build_args(build_args: dict, secret_args: list) -> None:
    for name, value in build_args.items():
        if not ARG_NAME_PATTERN.match(str(name)):
            raise OptionError("build_args", f"{name!r} is not a valid build arg name.")
        if not isinstance(value, str):
            raise OptionError("build_args", f"The value of {name} must be a string.")
    for name in secret_args:
        if name not in build_args:
            raise OptionError("secret_args", f"{name!r} is named secret but has no value in build_args.")


# BuildKit's secret ids: what `--secret id=NAME` and `--mount=type=secret,id=NAME` accept, kept simple.
SECRET_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")
MAX_SECRETS = 20
# A secret is written to a file for its step; the leak check reads every layer for it.
MAX_SECRET_BYTES = 64 * 1024


def check_secrets(secrets: dict) -> None:
    """Names BuildKit takes, values long enough for the leak check to mean something and short enough to search."""
    if len(secrets) > MAX_SECRETS:
        raise OptionError("secrets", f"At most {MAX_SECRETS} secrets per build.")
    for name, value in secrets.items():
        if not SECRET_NAME_PATTERN.match(str(name)):
            raise OptionError("secrets", f"{name!r} is not a secret name: use letters, digits, _ . and -.")
        if not isinstance(value, str):
            raise OptionError("secrets", f"The value of secret {name} must be a string.")
        size = len(value.encode("utf-8"))
        if size < MIN_SECRET_LENGTH:
            raise OptionError("secrets", f"Secret {name} is shorter than {MIN_SECRET_LENGTH} bytes: too short to "
                                         "keep out of the image (it would match anywhere).")
        if size > MAX_SECRET_BYTES:
            raise OptionError("secrets", f"Secret {name} is larger than {MAX_SECRET_BYTES // 1024} KiB.")


LIMITS_NEED_CLASSIC = ("memory or CPU limits: only the classic builder enforces them (BuildKit in the engine "
                       "ignores them)")


def choose_builder(requested: str, *, limits: bool, secrets: bool) -> tuple[str, str]:
    """The builder for a build and, for the classic one, why; OptionError where the request cannot be met.

    `auto` is BuildKit unless the build sets memory or CPU limits, which only the classic builder enforces. Asking
    for BuildKit with limits is refused rather than run without them; secrets need BuildKit's secret mounts."""
    requested = requested or BuilderChoice.AUTO
    if requested not in BuilderChoice.values:
        raise OptionError("builder", f"{requested!r} is not a builder: use auto, buildkit or classic.")
    if requested == BuilderChoice.CLASSIC:
        builder, reason = Builder.CLASSIC, "asked for"
    elif limits:
        if requested == BuilderChoice.BUILDKIT:
            raise OptionError("builder", "BuildKit ignores memory and CPU limits: remove the limits or ask for the "
                                         "classic builder.")
        builder, reason = Builder.CLASSIC, LIMITS_NEED_CLASSIC
    else:
        builder, reason = Builder.BUILDKIT, ""
    if secrets and builder == Builder.CLASSIC:
        raise OptionError("secrets", f"Secrets need BuildKit's secret mounts; this build would run on the classic "
                                     f"builder ({reason}).")
    return builder, reason


def split_secret_args(parsed: dockerfile.Dockerfile, build_args: dict[str, str],
                      secret_args: list[str]) -> tuple[dict[str, str], list[str]]:
    """The old `secret_args` (build args whose values are secret) as build secrets, and the notes to log.

    A build argument's value is written into the image's history, so a secret one is refused where the Dockerfile
    declares it as an ARG; where a RUN step mounts it (`--mount=type=secret,id=NAME`) or nothing reads it, it
    becomes a secret (with a deprecation note)."""
    secrets, notes = {}, []
    for name in secret_args:
        if name in parsed.declared_args:
            raise OptionError("secret_args", f"{name} is an ARG of the Dockerfile: its value would be written into "
                                             f"the image's history. Pass it in secrets and read it with "
                                             f"RUN --mount=type=secret,id={name}.")
        secrets[name] = build_args[name]
        notes.append(f"NOTE: secret_args is deprecated: {name} is passed as a build secret (use secrets).")
    return secrets, notes


def check_labels(labels: dict) -> None:
    for key, value in labels.items():
        if not key or not isinstance(value, str):
            raise OptionError("labels", f"Label {key!r} needs a non-empty key and a string value.")


def stages_of(dockerfile_text: str) -> list[str]:
    """The names given to stages with `FROM ... AS name`, in order."""
    # The reader numbers unnamed stages "#<index>": only names given with AS count here.
    return [stage for stage in dockerfile.parse(dockerfile_text).stages if not stage.startswith("#")]


def check_target(source: Source, dockerfile: str, path: str, target: str) -> str:
    """The Dockerfile must exist in the context; a target must name one of its stages. Returns its text."""
    try:
        text = plan_dockerfile_text(source, dockerfile, path)
    except ContextError as exc:
        raise OptionError("dockerfile", str(exc)) from None
    stages = stages_of(text)
    if target and target.lower() not in stages:
        known = ", ".join(stages) or "none"
        raise OptionError("target", f"The Dockerfile has no stage named {target!r} (stages: {known}).")
    return text


def check_dockerfile(
    owner, text: str, build_args: dict[str, str]
) -> list[tuple[dockerfile.ImageUse, access.ImageGrant]]:
    """Every image the Dockerfile reads (FROM, COPY --from, RUN --mount from=) must be one the owner may use, and
    every URL it fetches (ADD <url>) one the console may fetch for them; OptionError names the line otherwise.
    Returns each image use with its grant."""
    parsed = dockerfile.parse(text, build_args)
    granted = []
    for use in parsed.image_uses:
        if not use.reference or "$" in use.reference:
            raise OptionError("dockerfile", f"Line {use.line}: {use.how} names no image the console can check "
                                            f"({use.reference or 'an empty name'}): give the image by name.")
        try:
            granted.append((use, access.grant(owner, use.reference)))
        except access.ImageAccessError as exc:
            raise OptionError("dockerfile", f"Line {use.line}: {use.how} {use.reference}: {exc}") from None
    for remote in parsed.remote_sources:
        try:
            netpolicy.check_url(remote.url, user=owner, purpose=netpolicy.BUILD_URL)
        except netpolicy.DestinationRefused as exc:
            raise OptionError("dockerfile", f"Line {remote.line}: {remote.instruction} {remote.url}: {exc}") from None
    return granted
