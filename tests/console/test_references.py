"""console/references.py against Distribution's own cases (distribution/reference, reference_test.go and
normalize_test.go), plus the lenient split the engine wrapper uses on names the engine reports."""

from __future__ import annotations

import time

import pytest

from console import references
from console.references import InvalidReference, Reference

DIGEST = "sha256:" + "f" * 64

# input -> (domain, name, tag, digest), from TestReferenceParse.
VALID = {
    "test_com": ("", "test_com", "", ""),
    "test.com:tag": ("", "test.com", "tag", ""),
    "test.com:5000": ("", "test.com", "5000", ""),
    "test.com/repo:tag": ("test.com", "test.com/repo", "tag", ""),
    "test:5000/repo": ("test:5000", "test:5000/repo", "", ""),
    "test:5000/repo:tag": ("test:5000", "test:5000/repo", "tag", ""),
    f"test:5000/repo@{DIGEST}": ("test:5000", "test:5000/repo", "", DIGEST),
    f"test:5000/repo:tag@{DIGEST}": ("test:5000", "test:5000/repo", "tag", DIGEST),
    "lowercase:Uppercase": ("", "lowercase", "Uppercase", ""),
    "a/" * 127 + "a:tag-puts-this-over-max": ("a", "a/" * 127 + "a", "tag-puts-this-over-max", ""),
    "sub-dom1.foo.com/bar/baz/quux": ("sub-dom1.foo.com", "sub-dom1.foo.com/bar/baz/quux", "", ""),
    "sub-dom1.foo.com/bar/baz/quux:some-long-tag": ("sub-dom1.foo.com", "sub-dom1.foo.com/bar/baz/quux",
                                                    "some-long-tag", ""),
    "b.gcr.io/test.example.com/my-app:test.example.com": ("b.gcr.io", "b.gcr.io/test.example.com/my-app",
                                                          "test.example.com", ""),
    "xn--n3h.com/myimage:xn--n3h.com": ("xn--n3h.com", "xn--n3h.com/myimage", "xn--n3h.com", ""),
    f"xn--7o8h.com/myimage:xn--7o8h.com@{DIGEST}": ("xn--7o8h.com", "xn--7o8h.com/myimage", "xn--7o8h.com", DIGEST),
    "foo_bar.com:8080": ("", "foo_bar.com", "8080", ""),
    "foo/foo_bar.com:8080": ("foo", "foo/foo_bar.com", "8080", ""),
    "192.168.1.1": ("", "192.168.1.1", "", ""),
    "192.168.1.1:tag": ("", "192.168.1.1", "tag", ""),
    "192.168.1.1:5000": ("", "192.168.1.1", "5000", ""),
    "192.168.1.1/repo": ("192.168.1.1", "192.168.1.1/repo", "", ""),
    "192.168.1.1:5000/repo": ("192.168.1.1:5000", "192.168.1.1:5000/repo", "", ""),
    "192.168.1.1:5000/repo:5050": ("192.168.1.1:5000", "192.168.1.1:5000/repo", "5050", ""),
    "[2001:db8::1]/repo": ("[2001:db8::1]", "[2001:db8::1]/repo", "", ""),
    "[2001:db8:1:2:3:4:5:6]/repo:tag": ("[2001:db8:1:2:3:4:5:6]", "[2001:db8:1:2:3:4:5:6]/repo", "tag", ""),
    "[2001:db8::1]:5000/repo": ("[2001:db8::1]:5000", "[2001:db8::1]:5000/repo", "", ""),
    f"[2001:db8::1]:5000/repo:tag@{DIGEST}": ("[2001:db8::1]:5000", "[2001:db8::1]:5000/repo", "tag", DIGEST),
    "[::1]:5000/repo": ("[::1]:5000", "[::1]:5000/repo", "", ""),
    "example.com/" + "a" * 255 + ":tag": ("example.com", "example.com/" + "a" * 255, "tag", ""),
}

# input -> the start of Distribution's error message.
INVALID = {
    "": "repository name must have at least one component",
    ":justtag": "invalid reference format",
    f"@{DIGEST}": "invalid reference format",
    "repo@sha256:" + "f" * 30: "invalid reference format",
    "Uppercase:tag": "repository name must be lowercase",
    "test:5000/Uppercase/lowercase:tag": "repository name must be lowercase",
    "domain/" + "a" * 256 + ":tag": "repository name must not be more than 255 characters",
    "aa/asdf$$^/aa": "invalid reference format",
    "[2001:db8::1]": "invalid reference format",
    "[2001:db8::1]:5000": "invalid reference format",
    "[2001:db8::1]:tag": "invalid reference format",
    "[fe80::1%eth0]:5000/repo": "invalid reference format",
    "[fe80::1%@invalidzone]:5000/repo": "invalid reference format",
    # Python's `$` would match before a final newline: the grammar must not.
    "ubuntu\n": "invalid reference format",
    "app: 1": "invalid reference format",
    # Go's \w is ASCII.
    "app:caf\u00e9": "invalid reference format",
    "a" * 2000: "reference is too long",
}


@pytest.mark.parametrize("text", sorted(VALID))
def test_it_parses_distributions_valid_references(text):
    domain, name, tag, digest = VALID[text]
    parsed = references.parse(text)
    assert (parsed.domain, parsed.name, parsed.tag, parsed.digest) == (domain, name, tag, digest)
    assert str(parsed) == text


@pytest.mark.parametrize("text", sorted(INVALID))
def test_it_refuses_distributions_invalid_references(text):
    with pytest.raises(InvalidReference, match="^" + INVALID[text].replace("[", r"\[")):
        references.parse(text)


# From TestParseNormalizedNamed / TestValidateReferenceName: what the Docker CLI makes of a familiar name.
NORMALISED = {
    "ubuntu": "docker.io/library/ubuntu",
    "docker.io/library/ubuntu": "docker.io/library/ubuntu",
    "index.docker.io/library/ubuntu": "docker.io/library/ubuntu",
    "library/ubuntu:14.04": "docker.io/library/ubuntu:14.04",
    "foo/bar": "docker.io/foo/bar",
    "docker.io/foo/bar:tag": "docker.io/foo/bar:tag",
    "localhost/app": "localhost/app",
    "localhost:5000/app:1": "localhost:5000/app:1",
    "registry:5000/team/app": "registry:5000/team/app",
    "example.com/a/b/c": "example.com/a/b/c",
    f"ubuntu@{DIGEST}": f"docker.io/library/ubuntu@{DIGEST}",
}


@pytest.mark.parametrize("text", sorted(NORMALISED))
def test_it_normalises_familiar_names_as_docker_does(text):
    assert str(references.parse_normalized(text)) == NORMALISED[text]


@pytest.mark.parametrize("text", ["a" * 64, "docker.io/docker/Docker", "docker///docker", "FOO", "ubuntu:", "-app"])
def test_it_refuses_names_docker_refuses(text):
    with pytest.raises(InvalidReference):
        references.parse_normalized(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("ubuntu", "ubuntu:latest"),
    ("docker.io/library/ubuntu:22.04", "ubuntu:22.04"),
    ("index.docker.io/library/ubuntu", "ubuntu:latest"),
    ("docker.io/team/app:1", "team/app:1"),
    ("docker.io/library/team/app:1", "library/team/app:1"),
    ("registry:5000/team/app", "registry:5000/team/app:latest"),
    (f"docker.io/library/app@{DIGEST}", f"app@{DIGEST}"),
])
def test_familiar_drops_docker_hubs_defaults_and_adds_latest(text, expected):
    assert references.familiar(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("app", ("app", "latest")),
    ("app:1.0", ("app", "1.0")),
    ("registry:5000/team/app", ("registry:5000/team/app", "latest")),
    ("registry:5000/team/app:2", ("registry:5000/team/app", "2")),
    (f"registry:5000/app@{DIGEST}", ("registry:5000/app", DIGEST)),
    (f"registry:5000/app:1@{DIGEST}", ("registry:5000/app", DIGEST)),
    ("host:5000", ("host", "5000")),
    ("", ("", "latest")),
    (":x", (":x", "latest")),
])
def test_split_never_takes_a_port_for_a_tag(text, expected):
    assert references.split(text) == expected


def test_the_repository_and_tag_checks():
    assert references.is_path("team/app-1/x_y.z")
    assert not references.is_path("registry:5000/app")
    assert not references.is_path("Team/app")
    assert not references.is_path("app\n")
    assert references.is_tag("v1.0_rc-2")
    assert not references.is_tag(".hidden")
    assert not references.is_tag("a" * 129)
    assert not references.is_tag("1\n")
    assert references.is_sha256_digest(DIGEST)
    assert not references.is_sha256_digest("sha256:" + "F" * 64)


def test_a_reference_prints_as_written_and_drops_defaults():
    parsed = Reference("docker.io", "library/busybox", "1.36")
    assert parsed.name == "docker.io/library/busybox"
    assert str(parsed.familiar()) == "busybox:1.36"
    assert str(Reference("", "app").with_default_tag()) == "app:latest"


def test_hostile_names_are_answered_at_once():
    for text in ("a" * 999 + "!", "a-" * 499 + "!", "a." * 499 + "/!", "a/" * 499 + "A", "[" + ":" * 900 + "/a"):
        started = time.perf_counter()
        with pytest.raises(InvalidReference):
            references.parse(text)
        assert time.perf_counter() - started < 0.5


# -- the callers keep their own messages ------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["my-app:1.0", "registry:5000/team/app:2", "[::1]:5000/app", "Team/app:1"])
def test_build_tags_follow_the_grammar(tag):
    from builds.services import options

    assert options.check_tag(tag) == tag


@pytest.mark.parametrize("tag", ["My-App", "app:1\n", f"app@{DIGEST}", "app:caf\u00e9", "a" * 256, "app:", "-x"])
def test_build_tags_outside_the_grammar_are_refused_with_the_old_message(tag):
    from builds.services import options

    with pytest.raises(options.OptionError, match="is not a valid image name: use name\\[:tag\\]"):
        options.check_tag(tag)


@pytest.mark.parametrize(("reference", "expected"), [
    ("team/app", ("team/app", "latest")),
    ("team/app:1.0", ("team/app", "1.0")),
    (f"team/app@{DIGEST}", ("team/app", DIGEST)),
    (f"team/app:1@{DIGEST}", ("team/app", DIGEST)),
])
def test_pull_references_split_within_a_registry(reference, expected):
    from registry import services

    assert services.split_reference(reference) == expected


@pytest.mark.parametrize(("reference", "message"), [
    ("team/app:", "'' is not a tag."),
    ("team/app:.x", "'.x' is not a tag."),
    ("team/app@sha256:abc", "A digest is sha256: and 64 hexadecimal digits."),
    ("host:5000/app", "Name a repository within the registry, such as team/app:1.0."),
    ("Team/app", "Name a repository within the registry, such as team/app:1.0."),
])
def test_pull_references_outside_the_grammar_keep_their_messages(reference, message):
    from django.core.exceptions import ValidationError

    from registry import services

    with pytest.raises(ValidationError) as caught:
        services.split_reference(reference)
    assert caught.value.message_dict == {"reference": [message]}
