"""Which history entry made which layer, from the Engine API's answers (builds/layermap.py), against what engine
20.10 did: each case below is an image built on the classic builder and on BuildKit, its history as
`GET /images/{id}/history` gave it (CreatedBy, Comment, Size; oldest first), whether the image config's history
said the entry made a layer (`empty_layer`, read from `docker save`), and for the classic builder the number of
layers of the intermediate image the history names for the entry. tests/builds/test_layers_exact_engine.py
checks the same on the real engine."""

from __future__ import annotations

import pytest

from builds.layermap import Makes, entry_makes, from_config, is_settled, settle

BASE = ("", "Imported from -", 1984253, True, 1)
BK = "buildkit.dockerfile.v0"

# name: (builder, layers, [(CreatedBy, Comment, Size, made a layer, layers through it on the classic builder)])
CASES = {
    "hello-classic": ("classic", 4, [
        BASE,
        ("/bin/sh -c #(nop)  LABEL org.opencontainers.image.title=hello", "", 0, False, 1),
        ("/bin/sh -c #(nop)  ENV WHO=World PORT=8080", "", 0, False, 1),
        ("/bin/sh -c mkdir -p /app/www/cgi-bin", "", 0, True, 2),
        ("/bin/sh -c #(nop) WORKDIR /app", "", 0, False, 2),
        ("/bin/sh -c #(nop) COPY dir:a8bf4c3c30abe32fb676481a0a86 in /app/www/", "", 204, True, 3),
        ("/bin/sh -c chmod 755 /app/www/cgi-bin/index.cgi", "", 204, True, 4),
        ("/bin/sh -c #(nop)  USER nobody", "", 0, False, 4),
        ("/bin/sh -c #(nop)  EXPOSE 8080", "", 0, False, 4),
        ('/bin/sh -c #(nop)  CMD ["sh" "-c" "exec httpd -f -v -p \\"$PORT\\" -h /app/www"]', "", 0, False, 4),
    ]),
    "hello-buildkit": ("buildkit", 5, [
        BASE,
        ("LABEL org.opencontainers.image.title=hello", BK, 0, False, None),
        ("ENV WHO=World PORT=8080", BK, 0, False, None),
        ("RUN /bin/sh -c mkdir -p /app/www/cgi-bin # buildkit", BK, 0, True, None),
        ("WORKDIR /app", BK, 0, True, None),
        ("COPY www/ /app/www/ # buildkit", BK, 204, True, None),
        ("RUN /bin/sh -c chmod 755 /app/www/cgi-bin/index.cgi # buildkit", BK, 204, True, None),
        ("USER nobody", BK, 0, False, None),
        ("EXPOSE map[8080/tcp:{}]", BK, 0, False, None),
        ('CMD ["sh" "-c" "exec httpd -f -v -p \\"$PORT\\" -h /app/www"]', BK, 0, False, None),
    ]),
    "run-true-classic": ("classic", 1, [
        BASE, ("/bin/sh -c true", "", 0, False, 1), ("/bin/sh -c #(nop)  LABEL a=b", "", 0, False, 1)]),
    "run-true-buildkit": ("buildkit", 2, [
        BASE, ("RUN /bin/sh -c true # buildkit", BK, 0, True, None), ("LABEL a=b", BK, 0, False, None)]),
    "copy-empty-folder-classic": ("classic", 3, [
        BASE, ("/bin/sh -c #(nop) COPY dir:8a78ccfed50ab70fc76b in /e/ ", "", 0, True, 2),
        ("/bin/sh -c #(nop) COPY dir:8a78ccfed50ab70fc76b in /e2 ", "", 0, True, 3)]),
    "copy-empty-folder-buildkit": ("buildkit", 3, [
        BASE, ("COPY emptydir/ /e/ # buildkit", BK, 0, True, None),
        ("COPY emptydir /e2 # buildkit", BK, 0, True, None)]),
    "workdir-new-classic": ("classic", 2, [BASE, ("/bin/sh -c #(nop) WORKDIR /newdir", "", 0, True, 2)]),
    "workdir-new-buildkit": ("buildkit", 2, [BASE, ("WORKDIR /newdir", BK, 0, True, None)]),
    "workdir-existing-classic": ("classic", 1, [
        BASE, ("/bin/sh -c #(nop) WORKDIR /bin", "", 0, False, 1), ("/bin/sh -c #(nop) WORKDIR /", "", 0, False, 1)]),
    "workdir-existing-buildkit": ("buildkit", 2, [
        BASE, ("WORKDIR /bin", BK, 0, True, None), ("WORKDIR /", BK, 0, False, None)]),
    "config-only-buildkit": ("buildkit", 1, [
        BASE, *[(text, BK, 0, False, None) for text in (
            "ARG X=1", "ENV A=1", "LABEL l=1", 'CMD ["sh"]', "EXPOSE map[80/tcp:{}]", "USER nobody",
            "VOLUME [/newvol]", "STOPSIGNAL 9", "SHELL [/bin/sh -c]", 'ENTRYPOINT ["sh"]', "MAINTAINER me")]]),
    "multi-stage-classic": ("classic", 3, [
        BASE, ("/bin/sh -c mkdir /y", "", 0, True, 2),
        ("/bin/sh -c #(nop) COPY file:64e42eaa82312ec1777a in /f ", "", 3, True, 3)]),
    "multi-stage-buildkit": ("buildkit", 3, [
        BASE, ("RUN /bin/sh -c mkdir /y # buildkit", BK, 0, True, None), ("COPY /f /f # buildkit", BK, 3, True, None)]),
    "mixed-classic": ("classic", 7, [
        BASE, ("/bin/sh -c touch /emptyfile", "", 0, True, 2), ("/bin/sh -c rm /bin/vi", "", 0, True, 3),
        ("/bin/sh -c ln -s /bin /lnk", "", 4, True, 4), ("/bin/sh -c true", "", 0, False, 4),
        ("/bin/sh -c mkdir /z", "", 0, True, 5), ("/bin/sh -c #(nop) COPY file:99dab1a7 in /f.txt ", "", 6, True, 6),
        ("/bin/sh -c #(nop) COPY file:99dab1a7 in /f.txt ", "", 6, True, 7)]),
    "mixed-buildkit": ("buildkit", 8, [
        BASE, ("RUN /bin/sh -c touch /emptyfile # buildkit", BK, 0, True, None),
        ("RUN /bin/sh -c rm /bin/vi # buildkit", BK, 0, True, None),
        ("RUN /bin/sh -c ln -s /bin /lnk # buildkit", BK, 0, True, None),
        ("RUN /bin/sh -c true # buildkit", BK, 0, True, None),
        ("RUN /bin/sh -c mkdir /z # buildkit", BK, 0, True, None),
        ("COPY f.txt /f.txt # buildkit", BK, 6, True, None), ("COPY f.txt /f.txt # buildkit", BK, 6, True, None)]),
    "config-and-exec-form-classic": ("classic", 4, [
        BASE, ("/bin/sh -c #(nop)  VOLUME [/newvol]", "", 0, False, 1),
        ("/bin/sh -c #(nop) WORKDIR /w", "", 0, True, 2),
        ("/bin/sh -c #(nop)  ENV A=1", "", 0, False, 2), ("/bin/sh -c #(nop)  VOLUME [/w/v2]", "", 0, False, 2),
        ("mkdir /q", "", 0, True, 3), ("/bin/sh -c #(nop)  USER nobody", "", 0, False, 3),
        ("/bin/sh -c #(nop) WORKDIR /w2", "", 0, True, 4), ("/bin/sh -c #(nop)  STOPSIGNAL 9", "", 0, False, 4),
        ("/bin/sh -c #(nop)  HEALTHCHECK &{[\"CMD-SHELL\" \"true\"] \"0s\" \"0s\" \"0s\" '\\x00'}", "", 0, False, 4),
        ("/bin/sh -c #(nop)  SHELL [/bin/sh -c]", "", 0, False, 4),
        ("/bin/sh -c #(nop)  ONBUILD RUN true", "", 0, False, 4),
        ('/bin/sh -c #(nop)  ENTRYPOINT ["sh"]', "", 0, False, 4),
        ("true", "", 0, False, 4), ("/bin/sh -c #(nop)  ARG B=2", "", 0, False, 4),
        ("|1 B=2 /bin/sh -c echo $B", "", 0, False, 4), ("/bin/sh -c #(nop)  MAINTAINER me", "", 0, False, 4)]),
    "config-and-exec-form-buildkit": ("buildkit", 6, [
        BASE, ("VOLUME [/newvol]", BK, 0, False, None), ("WORKDIR /w", BK, 0, True, None),
        ("ENV A=1", BK, 0, False, None),
        ("VOLUME [/w/v2]", BK, 0, False, None),
        ("RUN mkdir /q # buildkit", BK, 0, True, None),
        ("USER nobody", BK, 0, False, None), ("WORKDIR /w2", BK, 0, True, None), ("STOPSIGNAL 9", BK, 0, False, None),
        ("SHELL [/bin/sh -c]", BK, 0, False, None), ("RUN true # buildkit", BK, 0, True, None),
        ("ARG B=2", BK, 0, False, None), ("RUN |1 B=2 /bin/sh -c echo $B # buildkit", BK, 0, True, None),
        ("MAINTAINER me", BK, 0, False, None)]),
}


def kinds(entries) -> list[Makes]:
    return [entry_makes(created_by, comment, size) for created_by, comment, size, _made, _count in entries]


def made(entries) -> list[bool]:
    return [entry[3] for entry in entries]


@pytest.mark.parametrize("name", CASES)
def test_what_an_entry_says_of_itself_is_never_contradicted_by_the_config(name):
    _builder, _layers, entries = CASES[name]
    for kind, truth in zip(kinds(entries), made(entries), strict=True):
        assert (kind, truth) not in {(Makes.LAYER, False), (Makes.NO_LAYER, True)}


@pytest.mark.parametrize("name", CASES)
def test_what_the_history_settles_is_what_the_config_says(name):
    _builder, layers, entries = CASES[name]
    decided = settle(kinds(entries), layers)
    assert decided is not None
    assert all(state is None or state == truth for state, truth in zip(decided, made(entries), strict=True))


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case[0] == "buildkit"])
def test_a_buildkit_history_settles_every_entry_by_itself(name):
    _builder, layers, entries = CASES[name]
    assert settle(kinds(entries), layers) == made(entries)


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case[0] == "classic"])
def test_a_classic_history_is_settled_by_its_intermediate_images(name):
    _builder, layers, entries = CASES[name]
    counts = {index: entry[4] for index, entry in enumerate(entries)}
    assert settle(kinds(entries), layers, counts) == made(entries)


def test_hello_on_the_classic_builder_needs_the_intermediate_images_of_its_zero_size_steps():
    _builder, layers, entries = CASES["hello-classic"]
    decided = settle(kinds(entries), layers)
    # `RUN mkdir` made a layer with no bytes and `WORKDIR /app` (the folder was there) made none: by sizes and
    # instructions either could hold the fourth layer.
    assert decided == [True, False, False, None, None, True, True, False, False, False]
    # The images of the open entries and of the one before them settle it.
    assert settle(kinds(entries), layers, {2: 1, 3: 2, 4: 2}) == made(entries)


def test_an_ambiguous_base_under_a_buildkit_build_stays_open_rather_than_guessed():
    # FROM an image the classic builder made with `RUN true` and `RUN mkdir`, pulled (no intermediate images).
    entries = [BASE, ("/bin/sh -c true", "", 0, False, None), ("/bin/sh -c mkdir /x", "", 0, True, None),
               ("RUN /bin/sh -c mkdir /y # buildkit", BK, 0, True, None), ("ENV A=1", BK, 0, False, None)]
    assert settle(kinds(entries), 3) == [True, None, None, None, False]


def test_facts_that_fit_no_assignment_settle_nothing():
    assert settle([Makes.LAYER, Makes.LAYER], 1) is None
    assert settle([Makes.LAYER, Makes.NO_LAYER], 2) is None
    assert settle([Makes.LAYER, Makes.EITHER], 2, {0: 2}) is None
    assert settle([], 0) == []
    assert is_settled([True, False]) and not is_settled([True, None]) and not is_settled(None)


@pytest.mark.parametrize(("created_by", "comment", "size", "kind"), [
    ("/bin/sh -c #(nop)  ENV A=1", "", 0, Makes.NO_LAYER),
    ("/bin/bash -o pipefail -c #(nop)  LABEL a=b", "", 0, Makes.NO_LAYER),
    ("/bin/sh -c #(nop) ADD file:abc in / ", "", 0, Makes.EITHER),
    ("/bin/sh -c #(nop)  CMD [\"sh\"]", "", 7, Makes.LAYER),
    ("/bin/sh -c mkdir /x", "", 0, Makes.EITHER),
    # A RUN's own text with a newline is never taken for the classic builder's marker.
    ("/bin/sh -c #(nop) ENV\nmkdir /x", "", 0, Makes.EITHER),
    ("ADD https://example.com/a /a # buildkit", BK, 0, Makes.EITHER),
    ("ONBUILD RUN true", BK, 0, Makes.NO_LAYER),
    ("", "", 0, Makes.EITHER),
])
def test_each_entry_says_what_it_can(created_by, comment, size, kind):
    assert entry_makes(created_by, comment, size) is kind


def test_the_config_says_it_when_its_history_accounts_for_the_layers():
    config = {"history": [{"created_by": "a"}, {"created_by": "b", "empty_layer": True}, {"created_by": "c"}]}
    assert from_config(config, 3, 2) == [True, False, True]
    assert from_config(config, 3, 3) is None
    assert from_config(config, 2, 2) is None
    assert from_config({}, 0, 0) is None
