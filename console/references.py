"""Image references, read one way everywhere: the grammar of Distribution's `reference` package.

    reference := name [ ":" tag ] [ "@" digest ]
    name      := [ domain "/" ] path-component [ "/" path-component ]*
    domain    := host [ ":" port ]          (a host is a DNS name or a bracketed IPv6 address)

A registry's port is part of the domain, never a tag: `host:5000/app` has no tag, `host:5000` is the name `host`
with the tag `5000`. Docker Hub names are familiar: `ubuntu` is `docker.io/library/ubuntu`.

The patterns are regexp.go's, anchored with `\\Z` (Python's `$` would let a trailing newline through) and ASCII
only (Go's `\\w` is ASCII). `docker-image-py` was tried first and not used: its patterns end in `$`, so
`"ubuntu\\n"` parses as `ubuntu`. Every pattern is linear for inputs the console accepts (it refuses names over
MAX_LENGTH before matching).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_NAMESPACE = "library"
DEFAULT_TAG = "latest"
# Distribution's limit on a name's path (the domain not counted).
NAME_TOTAL_LENGTH_MAX = 255
# Longer input is refused before any pattern runs: no reference the console stores is longer.
MAX_LENGTH = 1000

_ALPHA_NUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALPHA_NUMERIC}(?:{_SEPARATOR}{_ALPHA_NUMERIC})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_PATH = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"

REFERENCE_RE = re.compile(
    rf"(?P<name>(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH}))(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?\Z",
    re.ASCII,
)
PATH_RE = re.compile(rf"{_PATH}\Z", re.ASCII)
DOMAIN_RE = re.compile(rf"{_DOMAIN}\Z", re.ASCII)
TAG_RE = re.compile(rf"{_TAG}\Z", re.ASCII)
# The digests an engine and a registry agree on (the console only ever sees sha256).
SHA256_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}\Z", re.ASCII)
# A bare 64-hex id is an image id, never a name (Distribution: "cannot specify 64-byte hexadecimal strings").
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}\Z", re.ASCII)


class InvalidReference(ValueError):
    """Not an image reference; the message says what is wrong with it (Distribution's wording)."""


@dataclass(frozen=True)
class Reference:
    """A parsed reference: `domain` is "" when none was written (or after `familiar`), `tag`/`digest` "" when none."""

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def familiar(self) -> Reference:
        """Docker Hub's defaults dropped: `docker.io/library/ubuntu` -> `ubuntu`, `docker.io/a/b` -> `a/b`."""
        if self.domain not in (DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN):
            return self
        path = self.path.removeprefix(f"{OFFICIAL_NAMESPACE}/") if self.path.count("/") == 1 else self.path
        return Reference("", path, self.tag, self.digest)

    def with_default_tag(self) -> Reference:
        """`:latest` added when neither a tag nor a digest was given, as the engine resolves it."""
        return self if self.tag or self.digest else Reference(self.domain, self.path, DEFAULT_TAG, self.digest)


def parse(text: str) -> Reference:
    """Distribution's `Parse`: the reference as written, no defaults. Raises InvalidReference."""
    if not text:
        raise InvalidReference("repository name must have at least one component")
    if len(text) > MAX_LENGTH:
        raise InvalidReference("reference is too long")
    match = REFERENCE_RE.match(text)
    if match is None:
        if REFERENCE_RE.match(text.lower()):
            raise InvalidReference("repository name must be lowercase")
        raise InvalidReference("invalid reference format")
    if len(match["path"]) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
    return Reference(match["domain"] or "", match["path"], match["tag"] or "", match["digest"] or "")


def split_domain(name: str) -> tuple[str, str]:
    """Docker's `splitDockerDomain`: the first component is a registry when it has a dot or a port, is
    `localhost`, or has capitals (a path component cannot); else the name is on Docker Hub (`library/` for one
    component)."""
    first, slash, rest = name.partition("/")
    if not slash or not (first == "localhost" or "." in first or ":" in first or first.lower() != first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = f"{OFFICIAL_NAMESPACE}/{remainder}"
    return domain, remainder


def parse_normalized(text: str) -> Reference:
    """Distribution's `ParseNormalizedNamed`: a name as the Docker CLI reads it, `docker.io` and `library/` filled
    in (`ubuntu` -> `docker.io/library/ubuntu`). Raises InvalidReference."""
    if text and _IDENTIFIER_RE.match(text):
        raise InvalidReference(f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    if len(text or "") > MAX_LENGTH:
        raise InvalidReference("reference is too long")
    domain, remainder = split_domain(text or "")
    remote = remainder.split("@", 1)[0].split(":", 1)[0]
    if remote.lower() != remote:
        raise InvalidReference(f"invalid reference format: repository name ({remote}) must be lowercase")
    return parse(f"{domain}/{remainder}")


def familiar(text: str) -> str:
    """A reference with Docker Hub's default names removed and `:latest` added when it has no tag or digest —
    what the console compares and stores. Raises InvalidReference."""
    return str(parse_normalized(text).familiar().with_default_tag())


def is_path(text: str) -> bool:
    """A repository within a registry (path components only, no domain), like `team/app`."""
    return len(text) <= NAME_TOTAL_LENGTH_MAX and bool(PATH_RE.match(text))


def is_tag(text: str) -> bool:
    return bool(TAG_RE.match(text))


def is_sha256_digest(text: str) -> bool:
    return bool(SHA256_DIGEST_RE.match(text))


def split(reference: str) -> tuple[str, str]:
    """(repository, tag or digest) of any name an engine or a user gives, the tag `latest` when there is none.

    Lenient on purpose (it never raises): it is used on names the engine itself reports. The tag is after the
    last colon past the last `/`, so a registry's port is not a tag; a digest wins over a tag
    (`app:1@sha256:...` pulls the digest).
    """
    name, at, digest = reference.partition("@")
    if at:
        return (name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name), digest
    repository, colon, tag = name.rpartition(":")
    if not colon or not repository or "/" in tag:
        return reference, DEFAULT_TAG
    # `app:` keeps its empty tag, for the caller to refuse.
    return repository, tag
