"""The package readers (builds/packagedb.py) and the packages of a saved image as the analysis reads them, without
the engine: crafted dpkg status and status.d, apk installed, METADATA/PKG-INFO and package.json files, malformed
and oversized ones, whiteouts and opaque folders hiding packages, and the layer that introduced each."""

from __future__ import annotations

import io
import json
import tracemalloc

import pytest

from builds import packagedb
from builds.layerfiles import analyse_saved_image
from builds.packagedb import Parsed, kind_of, parse_os_release, purl_of, read_file
from tests.builds.test_layerfiles import chunked, layer_tar, saved_image

DPKG_STATUS = b"""\
Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: glibc (2.36-9+deb12u4)
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: removed-one
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib
Version: 1:1.2.13.dfsg-1

Package: no-version
Status: install ok installed

Package: half-installed
Status: install ok half-installed
Version: 3
"""

APK_INSTALLED = b"""\
C:Q1abc=
P:musl
V:1.2.4-r2
A:x86_64
S:383152
L:MIT
o:musl
F:lib
R:ld-musl-x86_64.so.1

C:Q1def=
P:libcrypto3
V:3.1.4-r1
A:x86_64
L:Apache-2.0
o:openssl

P:broken-no-version
A:x86_64
"""

METADATA = b"""\
Metadata-Version: 2.1
Name: requests
Version: 2.31.0
Summary: Python HTTP for Humans.
License: Apache 2.0
Classifier: License :: OSI Approved :: Apache Software License

Long description with Name: fake
Version: 9.9
"""

PACKAGE_JSON = json.dumps({"name": "left-pad", "version": "1.3.0", "license": "WTFPL"}).encode()

OS_RELEASE = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'


def read(kind: str, data: bytes):
    return read_file(kind, io.BytesIO(data), len(data))


# -- the readers ------------------------------------------------------------------------------------------------


def test_dpkg_status_gives_only_installed_entries_with_their_source():
    parsed = read(packagedb.DPKG, DPKG_STATUS)

    assert parsed == (
        Parsed("deb", "libc6", "2.36-9+deb12u4", arch="amd64", source_name="glibc"),
        Parsed("deb", "zlib1g", "1:1.2.13.dfsg-1", arch="amd64", source_name="zlib"),
    )


def test_a_distroless_status_d_entry_without_status_is_installed_one_with_another_is_not():
    entry = b"Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n\n" \
            b"Package: gone\nStatus: purge ok not-installed\nVersion: 1\n"

    assert read(packagedb.DPKG_DIR, entry) == (Parsed("deb", "base-files", "12.4+deb12u5", arch="amd64"),)


def test_apk_installed_gives_name_version_licence_and_origin():
    assert read(packagedb.APK, APK_INSTALLED) == (
        Parsed("apk", "musl", "1.2.4-r2", arch="x86_64", licence="MIT"),
        Parsed("apk", "libcrypto3", "3.1.4-r1", arch="x86_64", licence="Apache-2.0", source_name="openssl"),
    )


def test_python_metadata_reads_the_headers_only():
    assert read(packagedb.PYTHON, METADATA) == (Parsed("pypi", "requests", "2.31.0", licence="Apache 2.0"),)


def test_a_python_licence_text_is_not_a_name_and_the_classifiers_give_it():
    data = (b"Metadata-Version: 2.1\nName: foo\nVersion: 1.0\nLicense: Copyright (c) 2020 Someone\n"
            b"        Permission is hereby granted, free of charge\n"
            b"Classifier: License :: OSI Approved :: MIT License\nClassifier: Programming Language :: Python\n")

    assert read(packagedb.PYTHON, data) == (Parsed("pypi", "foo", "1.0", licence="MIT License"),)


def test_package_json_with_a_scoped_name_and_a_licence_object():
    data = json.dumps({"name": "@types/node", "version": "20.1.0", "license": {"type": "MIT"}}).encode()

    assert read(packagedb.NPM, data) == (Parsed("npm", "@types/node", "20.1.0", licence="MIT"),)


@pytest.mark.parametrize(("kind", "data"), [
    (packagedb.NPM, b"{not json"),
    (packagedb.NPM, b"[1, 2]"),
    (packagedb.NPM, json.dumps({"name": "x"}).encode()),
    (packagedb.NPM, json.dumps({"name": ["x"], "version": "1"}).encode()),
    (packagedb.NPM, b"[" * 100_000),
    (packagedb.PYTHON, b"\xff\xfe\x00garbage\n\n"),
    (packagedb.PYTHON, b"Name: only-a-name\n"),
    (packagedb.DPKG, b"\x00\x01\x02 binary junk\n:::\n\n\n"),
    (packagedb.DPKG, b"Package: x\nStatus: install ok installed\nVersion: " + b"9" * 300 + b"\n"),
    (packagedb.APK, b"P:\nV:\n\n"),
])
def test_malformed_files_give_nothing_and_do_not_raise(kind, data):
    assert read(kind, data) == ()


def test_control_characters_are_removed_from_names():
    data = b"Package: evil\x1b[31m\nStatus: install ok installed\nVersion: 1\x00.0\n"

    assert read(packagedb.DPKG, data) == (Parsed("deb", "evil[31m", "1.0"),)


def test_an_endless_line_is_dropped_and_memory_stays_bounded():
    class Endless(io.RawIOBase):
        """A dpkg status of 200 MiB, most of it one line without a newline."""

        def __init__(self):
            self.sent = 0

        def read(self, size=-1):
            if self.sent == 0:
                self.sent = 1
                return b"Package: first\nStatus: install ok installed\nVersion: 1\n\n"
            if self.sent > 200 * 1024 * 1024:
                return b""
            self.sent += size
            return b"x" * size

    tracemalloc.start()
    try:
        parsed = read_file(packagedb.DPKG, Endless(), 200 * 1024 * 1024)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert parsed == (Parsed("deb", "first", "1"),)
    assert peak < 4 * 1024 * 1024


def test_an_error_of_the_stream_itself_is_not_swallowed():
    class Broken(io.RawIOBase):
        def read(self, size=-1):
            raise ConnectionError("the engine went away")

    with pytest.raises(ConnectionError):
        read_file(packagedb.DPKG, Broken(), 100)


@pytest.mark.parametrize(("path", "kind"), [
    ("var/lib/dpkg/status", packagedb.DPKG),
    ("var/lib/dpkg/status-old", None),
    ("var/lib/dpkg/status.d/libc6", packagedb.DPKG_DIR),
    ("var/lib/dpkg/status.d/libc6.md5sums", None),
    ("lib/apk/db/installed", packagedb.APK),
    ("usr/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA", packagedb.PYTHON),
    ("usr/lib/python3/dist-packages/six-1.16.0.egg-info", packagedb.PYTHON),
    ("usr/lib/python3/dist-packages/foo.egg-info/PKG-INFO", packagedb.PYTHON),
    ("app/METADATA", None),
    ("app/node_modules/left-pad/package.json", packagedb.NPM),
    ("app/node_modules/@types/node/package.json", packagedb.NPM),
    ("app/node_modules/left-pad/lib/package.json", None),
    ("app/package.json", None),
    ("etc/os-release", packagedb.OS_RELEASE),
    ("usr/lib/os-release", packagedb.OS_RELEASE),
    ("usr/share/doc/zlib1g/copyright", packagedb.COPYRIGHT),
    ("usr/share/doc/zlib1g/sub/copyright", None),
])
def test_which_paths_are_read(path, kind):
    assert kind_of(path) == kind


def test_os_release_values_are_unquoted_and_odd_lines_skipped():
    text = OS_RELEASE.decode() + "lower=skipped\nBAD LINE\nVERSION_CODENAME=bookworm\nQUOTED='single'\n"

    assert parse_os_release(text) == {"PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)", "NAME": "Debian GNU/Linux",
                                      "VERSION_ID": "12", "ID": "debian", "VERSION_CODENAME": "bookworm",
                                      "QUOTED": "single"}


@pytest.mark.parametrize(("parsed", "os_release", "purl"), [
    (Parsed("deb", "libc6", "2.36-9", arch="amd64", source_name="glibc"), {"ID": "debian", "VERSION_ID": "12"},
     "pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12&upstream=glibc"),
    (Parsed("deb", "zlib1g", "1:1.2.13", arch="amd64"), {"ID": "ubuntu", "VERSION_ID": "22.04"},
     "pkg:deb/ubuntu/zlib1g@1:1.2.13?arch=amd64&distro=ubuntu-22.04"),
    (Parsed("deb", "x", "1"), {}, "pkg:deb/debian/x@1"),
    (Parsed("apk", "musl", "1.2.4-r2", arch="x86_64"), {"ID": "alpine", "VERSION_ID": "3.19.1"},
     "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1"),
    (Parsed("pypi", "Foo_Bar", "1.0"), {}, "pkg:pypi/foo-bar@1.0"),
    (Parsed("npm", "@types/node", "20.1.0"), {}, "pkg:npm/%40types/node@20.1.0"),
])
def test_purls(parsed, os_release, purl):
    assert purl_of(parsed, os_release) == purl


# -- the packages of a saved image ------------------------------------------------------------------------------


def names_and_layers(analysis) -> list[tuple[str, str, str, int | None]]:
    return [(found.ecosystem, found.name, found.version, found.layer) for found in analysis.packages]


def test_a_saved_image_gives_every_kind_of_package_with_its_layer_path_and_os():
    base = layer_tar(("etc", "dir"), ("etc/os-release", "symlink", "../usr/lib/os-release"),
                     ("usr/lib/os-release", "file", OS_RELEASE), ("var/lib/dpkg/status", "file", DPKG_STATUS))
    apps = layer_tar(("lib/apk/db/installed", "file", APK_INSTALLED),
                     ("usr/lib/python3/site-packages/requests-2.31.0.dist-info/METADATA", "file", METADATA))
    node = layer_tar(("app/node_modules/left-pad/package.json", "file", PACKAGE_JSON))
    analysis = analyse_saved_image(chunked(saved_image([base, apps, node])))

    assert names_and_layers(analysis) == [
        ("apk", "libcrypto3", "3.1.4-r1", 1), ("apk", "musl", "1.2.4-r2", 1),
        ("deb", "libc6", "2.36-9+deb12u4", 0), ("deb", "zlib1g", "1:1.2.13.dfsg-1", 0),
        ("npm", "left-pad", "1.3.0", 2), ("pypi", "requests", "2.31.0", 1),
    ]
    assert analysis.os_release["ID"] == "debian" and analysis.os_release["VERSION_ID"] == "12"
    by_name = {found.name: found for found in analysis.packages}
    assert by_name["libc6"].purl == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc"
    assert by_name["libc6"].path == "var/lib/dpkg/status"
    assert by_name["left-pad"].licence == "WTFPL" and by_name["musl"].licence == "MIT"


def test_a_package_rewritten_at_a_new_version_is_introduced_by_that_layer_and_others_keep_theirs():
    upgraded = DPKG_STATUS.replace(b"Version: 1:1.2.13.dfsg-1", b"Version: 1:1.3-1")
    base = layer_tar(("var/lib/dpkg/status", "file", DPKG_STATUS))
    other = layer_tar(("etc/motd", "file", b"hi"))
    upgrade = layer_tar(("var/lib/dpkg/status", "file", upgraded))
    analysis = analyse_saved_image(chunked(saved_image([base, other, upgrade])))

    assert names_and_layers(analysis) == [("deb", "libc6", "2.36-9+deb12u4", 0), ("deb", "zlib1g", "1:1.3-1", 2)]


def test_a_whiteout_hides_a_package_removed_in_a_later_layer():
    info = "usr/lib/python3/site-packages/requests-2.31.0.dist-info"
    base = layer_tar((info, "dir"), (f"{info}/METADATA", "file", METADATA),
                     ("app/node_modules/left-pad/package.json", "file", PACKAGE_JSON))
    removal = layer_tar(("usr/lib/python3/site-packages", "dir"),
                        ("usr/lib/python3/site-packages/.wh.requests-2.31.0.dist-info", "file"))
    opaque = layer_tar(("app/node_modules", "dir"), ("app/node_modules/.wh..wh..opq", "file"))
    analysis = analyse_saved_image(chunked(saved_image([base, removal, opaque])))

    assert analysis.packages == []


def test_a_package_removed_and_installed_again_is_introduced_by_the_layer_that_brought_it_back():
    path = "app/node_modules/left-pad/package.json"
    folder = ("app/node_modules/left-pad", "dir")
    layers = [layer_tar(folder, (path, "file", PACKAGE_JSON)), layer_tar(("app/node_modules/.wh.left-pad", "file")),
              layer_tar(folder, (path, "file", PACKAGE_JSON))]
    analysis = analyse_saved_image(chunked(saved_image(layers)))

    assert names_and_layers(analysis) == [("npm", "left-pad", "1.3.0", 2)]


def test_a_symlink_over_a_database_hides_it_and_is_not_followed():
    base = layer_tar(("etc/passwd", "file", b"root:x:0:0"), ("var/lib/dpkg/status", "file", DPKG_STATUS))
    link = layer_tar(("var/lib/dpkg/status", "symlink", "/etc/passwd"))
    analysis = analyse_saved_image(chunked(saved_image([base, link])))

    assert analysis.packages == []


def test_the_same_package_in_two_places_is_one_row_read_from_the_first_path():
    first, second = "a/node_modules/left-pad/package.json", "b/node_modules/left-pad/package.json"
    analysis = analyse_saved_image(chunked(saved_image([layer_tar((second, "file", PACKAGE_JSON)),
                                                        layer_tar((first, "file", PACKAGE_JSON))])))

    assert [(found.path, found.layer) for found in analysis.packages] == [(first, 0)]


class Trickle(io.RawIOBase):
    """A stream that answers at most `step` bytes a read, so lines cross the reader's chunks."""

    def __init__(self, data: bytes, step: int):
        self.data, self.step = data, step

    def read(self, size=-1):
        piece, self.data = self.data[:min(size, self.step)], self.data[min(size, self.step):]
        return piece


def test_lines_across_chunks_are_whole_and_a_long_line_between_them_is_dropped(monkeypatch):
    monkeypatch.setattr(packagedb, "MAX_LINE_BYTES", 40)
    long_line = b"Description: " + b"x" * 100 + b"\n"
    data = b"Package: a\nStatus: install ok installed\nVersion: 1\n" + long_line + b"\nPackage: b\nVersion: 2\n" \
        b"Status: install ok installed\n"

    for step in (1, 7, 64, 10_000):
        monkeypatch.setattr(packagedb, "READ_CHUNK", step)
        assert read_file(packagedb.DPKG, Trickle(data, step), len(data)) == (
            Parsed("deb", "a", "1"), Parsed("deb", "b", "2")), step


def test_identical_packages_from_many_files_are_kept_once_and_the_image_budget_stops_the_rest(monkeypatch):
    budget = packagedb.Budget()
    first = budget.keep(read(packagedb.DPKG, DPKG_STATUS))
    second = budget.keep(read(packagedb.DPKG, DPKG_STATUS))
    assert first == second and all(a is b for a, b in zip(first, second, strict=True))

    monkeypatch.setattr(packagedb, "MAX_PACKAGES_PER_IMAGE", 3)
    assert budget.keep(read(packagedb.APK, APK_INSTALLED)) == (Parsed("apk", "musl", "1.2.4-r2", arch="x86_64",
                                                                      licence="MIT"),)


COPYRIGHT = b"""\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: coreutils

Files: *
License: GPL-3+

Files: src/a.c
License: GPL-3+ and BSD-4-clause-UC

License: GPL-3+
 This program is free software.
"""


def test_a_machine_readable_copyright_gives_its_licences_once_each_and_a_free_form_one_nothing():
    assert read(packagedb.COPYRIGHT, COPYRIGHT) == {"licence": "GPL-3+, GPL-3+ and BSD-4-clause-UC"}
    assert read(packagedb.COPYRIGHT, b"This is the Debian prepackaged version of glibc.\nLicense: LGPL\n") == {}


def test_a_debian_package_takes_its_licence_from_its_copyright_file():
    base = layer_tar(("var/lib/dpkg/status", "file", DPKG_STATUS),
                     ("usr/share/doc/zlib1g/copyright", "file", COPYRIGHT.replace(b"coreutils", b"zlib")))
    analysis = analyse_saved_image(chunked(saved_image([base])))

    assert {found.name: found.licence for found in analysis.packages} == {
        "libc6": "", "zlib1g": "GPL-3+, GPL-3+ and BSD-4-clause-UC"}
