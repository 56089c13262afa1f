"""The archive reader on its own: formats by content, and every hostile archive refused with a reason."""

from __future__ import annotations

import io
import tarfile
import time

import pytest

from builds.constants import ArchiveFormat
from builds.sources import archives
from builds.sources.archives import MAX_SYMLINK_HOPS, ArchiveError, Limits, detect_format, read_members
from tests.builds.archive_factory import (
    HELLO_TREE,
    gnu_longname_tar,
    gnu_tar_bytes,
    gzip_bytes,
    pax_chain_tar,
    symlinks,
    tar_bytes,
    tar_with_pax,
    zip_bytes,
    zip_symlink_with_body,
    zip_with_extra,
)

LIMITS = Limits(max_upload_bytes=10**9, max_unpacked_bytes=10**9, max_members=1000, max_ratio=200,
                ratio_floor_bytes=1024 * 1024)


def read_all(data: bytes, limits: Limits = LIMITS) -> list:
    handle = io.BytesIO(data)
    fmt = detect_format(handle)
    members = []
    for member in read_members(handle, fmt, len(data), limits):
        content = member.open().read() if member.kind == "file" else None
        members.append((member.path, member.kind, content, member.linkname))
    return members


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (tar_bytes(HELLO_TREE), ArchiveFormat.TAR),
        (tar_bytes(HELLO_TREE, "gz"), ArchiveFormat.TAR_GZ),
        (tar_bytes(HELLO_TREE, "bz2"), ArchiveFormat.TAR_BZ2),
        (tar_bytes(HELLO_TREE, "xz"), ArchiveFormat.TAR_XZ),
        (zip_bytes(HELLO_TREE), ArchiveFormat.ZIP),
    ],
)
def test_it_recognises_each_format_by_content_and_reads_every_file(data, expected):
    assert detect_format(io.BytesIO(data)) == expected
    members = read_all(data)
    assert {(path, content) for path, kind, content, _ in members if kind == "file"} == set(HELLO_TREE)


def test_it_cleans_names():
    members = read_all(tar_bytes([("./a//b/./c.txt", b"x"), ("./", None, tarfile.DIRTYPE)]))
    assert [m[0] for m in members] == ["a/b/c.txt"]


def test_it_keeps_links_that_stay_inside():
    data = tar_bytes([("a/target", b"t"), ("a/link", None, tarfile.SYMTYPE, "target"),
                      ("b/up", None, tarfile.SYMTYPE, "../a/target"), ("hard", None, tarfile.LNKTYPE, "a/target")])
    kinds = {path: (kind, link) for path, kind, _, link in read_all(data)}
    assert kinds["a/link"] == ("symlink", "target")
    assert kinds["b/up"] == ("symlink", "../a/target")
    assert kinds["hard"] == ("hardlink", "a/target")


HOSTILE = {
    "absolute path": (tar_bytes([("/etc/passwd", b"x")]), "absolute path"),
    "dot-dot": (tar_bytes([("a/../../escape", b"x")]), "path with '..'"),
    "symlink out, absolute": (tar_bytes([("link", None, tarfile.SYMTYPE, "/etc/shadow")]), "points outside"),
    "symlink out, relative": (tar_bytes([("a/link", None, tarfile.SYMTYPE, "../../x")]), "points outside"),
    "hardlink out": (tar_bytes([("link", None, tarfile.LNKTYPE, "../outside")]), "path with '..'"),
    "hardlink absolute": (tar_bytes([("link", None, tarfile.LNKTYPE, "/etc/passwd")]), "absolute path"),
    "character device": (tar_bytes([("dev/null", None, tarfile.CHRTYPE)]), "device file"),
    "block device": (tar_bytes([("dev/sda", None, tarfile.BLKTYPE)]), "device file"),
    "fifo": (tar_bytes([("pipe", None, tarfile.FIFOTYPE)]), "fifo"),
    "name not UTF-8": (gnu_tar_bytes(b"caf\xe9.txt", b"x"), "not valid UTF-8"),
    "truncated tar.gz": (tar_bytes(HELLO_TREE, "gz")[:-40], "truncated or corrupt"),
    "corrupt gzip": (b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"garbage" * 20, "truncated or corrupt"),
    "truncated tar": (tar_bytes([("big", b"y" * 5000)])[:1500], "truncated or corrupt"),
    "empty tar": (tar_bytes([]), "empty"),
    "empty zip": (zip_bytes([]), "empty"),
    "zip absolute": (zip_bytes([("/abs.txt", b"x")]), "absolute path"),
    "zip dot-dot": (zip_bytes([("../evil.txt", b"x")]), "path with '..'"),
    "zip symlink out": (zip_bytes([], symlinks={"link": "/etc/passwd"}), "points outside"),
    "zip fifo": (zip_bytes([("pipe", b"")], unix_modes={"pipe": 0o010644}), "fifo"),
    "not an archive": (b"just some text, long enough to look at " * 20, "not an archive"),
    "nothing": (b"", "empty"),
    # What is not file data counts too: link targets, extension headers, zip symlink bodies.
    "zip symlink body is a bomb": (zip_symlink_with_body("link", b"a" * (8 * 1024 * 1024)), "decompression bomb"),
    "zip symlink target too long": (zip_symlink_with_body("link", b"a" * 5000), "longer than the 4,096 bytes"),
    "symlink target too long": (tar_bytes([("link", None, tarfile.SYMTYPE, "a/" * 2500)]),
                                "symlink target of 5,000 bytes"),
    "hard link target too long": (tar_bytes([("link", None, tarfile.LNKTYPE, "a/" * 2500)]),
                                  "hard link target of 5,000 bytes"),
    "path too long": (tar_bytes([("a/" * 2100 + "f", b"x")]), "path of 4,201 bytes"),
    "PAX header too big": (tar_with_pax("f", b"x", {"comment": "c" * 300_000}), "extension header of"),
    "GNU long name too big": (gnu_longname_tar("n" * 300_000, b"x"), "extension header of"),
    "PAX headers are a bomb": (tar_with_pax("f", b"x", {"comment": "c" * 250_000}, "gz", copies=6),
                               "decompression bomb"),
    "extension headers in a row": (pax_chain_tar(20), "extension headers in a row"),
    # Lexically each stays inside; followed through `sub/d -> ..` the last `..` climbs out of the root.
    "symlink chain out": (symlinks({"sub/d": "..", "x": "sub/d/sub/d/.."}), "leads above its root"),
    "symlink to a symlink out": (symlinks({"l1": "l2", "l2": "../outside"}), "points outside"),
    "symlink loop": (symlinks({"a": "b", "b": "a"}), "loops"),
    "symlink to itself": (symlinks({"self": "self"}), "loops"),
    "member inside a symlinked folder": (
        tar_bytes([("sub/", None, tarfile.DIRTYPE), ("d", None, tarfile.SYMTYPE, "sub"), ("d/x", b"x")]),
        "inside the symlink",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_it_refuses_hostile_archives_with_the_reason(case):
    data, reason = HOSTILE[case]
    with pytest.raises(ArchiveError, match=reason):
        read_all(data)


def test_it_refuses_more_members_than_the_limit():
    limits = Limits(10**9, 10**9, max_members=3, max_ratio=200, ratio_floor_bytes=0)
    with pytest.raises(ArchiveError, match="more than 3 members"):
        read_all(tar_bytes([(f"f{n}", b"x") for n in range(5)]), limits)


def test_it_refuses_more_bytes_than_the_limit():
    limits = Limits(10**9, max_unpacked_bytes=1000, max_members=100, max_ratio=10**6, ratio_floor_bytes=0)
    with pytest.raises(ArchiveError, match="more than 1,000 bytes"):
        read_all(tar_bytes([("a", b"x" * 600), ("b", b"x" * 600)]), limits)


def test_it_refuses_a_decompression_bomb():
    bomb = tar_bytes([("zeros", b"\0" * (8 * 1024 * 1024))], "gz")
    assert len(bomb) * 200 < 8 * 1024 * 1024
    with pytest.raises(ArchiveError, match="decompression bomb"):
        read_all(bomb)


def test_small_repetitive_archives_are_not_bombs():
    data = tar_bytes([("zeros", b"\0" * 100_000)], "gz")
    assert len(data) * 200 < 100_000
    assert read_all(data)[0][0] == "zeros"


def test_a_gzip_of_something_else_is_refused():
    with pytest.raises(ArchiveError, match="truncated or corrupt"):
        read_all(gzip_bytes(b"this is not a tar archive at all" * 50))


SMALL = Limits(10**9, max_unpacked_bytes=1000, max_members=100, max_ratio=10**6, ratio_floor_bytes=0)


def test_link_targets_count_against_the_unpacked_size():
    # 90 bytes fit the tar header itself (no PAX record): 12 of them are 1,080 bytes of targets.
    links = {f"l{n}": "t" * 90 for n in range(12)}
    with pytest.raises(ArchiveError, match="more than 1,000 bytes"):
        read_all(symlinks(links), SMALL)
    assert len(read_all(symlinks(dict(list(links.items())[:11])), SMALL)) == 11


def test_hard_link_targets_count_against_the_unpacked_size():
    members = [("t" * 90, b"")] + [(f"h{n}", None, tarfile.LNKTYPE, "t" * 90) for n in range(12)]
    with pytest.raises(ArchiveError, match="more than 1,000 bytes"):
        read_all(tar_bytes(members), SMALL)


def test_pax_headers_count_against_the_unpacked_size():
    with pytest.raises(ArchiveError, match="more than 1,000 bytes"):
        read_all(tar_with_pax("f", b"x", {"comment": "c" * 1200}), SMALL)
    assert read_all(tar_with_pax("f", b"x", {"comment": "c" * 100}), SMALL)[0][0] == "f"


def test_gnu_long_names_count_against_the_unpacked_size():
    with pytest.raises(ArchiveError, match="more than 1,000 bytes"):
        read_all(gnu_longname_tar("n" * 1200, b"x"), SMALL)
    assert read_all(gnu_longname_tar("n" * 200, b"x"), SMALL)[0][0] == "n" * 200


def test_zip_extra_fields_count_against_the_unpacked_size():
    with pytest.raises(ArchiveError, match="more than 1,000 bytes"):
        read_all(zip_with_extra("f", b"x", 2000), SMALL)
    assert read_all(zip_with_extra("f", b"x", 100), SMALL)[0][0] == "f"


def test_a_small_zip_whose_symlink_holds_200_mb_is_refused_without_reading_it():
    # The issue's case: about 200 KB uploaded, 200 MB declared as one symlink's target.
    data = zip_symlink_with_body("link", b"a" * (200 * 1024 * 1024))
    assert len(data) < 300_000
    started = time.monotonic()
    with pytest.raises(ArchiveError, match="decompression bomb"):
        read_all(data)
    # Refused from the declared size, nothing inflated.
    assert time.monotonic() - started < 0.5
    roomy = Limits(10**9, 10**10, max_members=10, max_ratio=10**6, ratio_floor_bytes=0)
    with pytest.raises(ArchiveError, match="longer than the 4,096 bytes"):
        read_all(data, roomy)


def test_the_unpacked_limit_refuses_a_zip_symlink_body_without_a_ratio():
    limits = Limits(10**9, max_unpacked_bytes=1000, max_members=10, max_ratio=10**6, ratio_floor_bytes=10**9)
    with pytest.raises(ArchiveError, match="more than 1,000 bytes"):
        read_all(zip_symlink_with_body("link", b"a" * 2000), limits)


def test_a_symlink_target_of_exactly_path_max_is_accepted():
    target = "a/" * 2047 + "bc"
    assert len(target) == 4096
    assert read_all(symlinks({"link": target}))[0][3] == target


def test_it_keeps_symlink_chains_that_stay_inside():
    data = symlinks({"c/up": "..", "a": "b", "b": "c/file", "e": "c/up/c/up/c/file", "dangling": "c/missing"},
                    files={"c/file": b"x"})
    kinds = {path: (kind, link) for path, kind, _, link in read_all(data)}
    assert kinds["e"] == ("symlink", "c/up/c/up/c/file")
    assert kinds["a"] == ("symlink", "b")


def test_a_link_replaced_by_a_later_member_no_longer_counts():
    # The later file replaces the loop's second link, as unpacking would.
    data = tar_bytes([("a", None, tarfile.SYMTYPE, "b"), ("b", None, tarfile.SYMTYPE, "a"), ("b", b"now a file")])
    assert [m[1] for m in read_all(data)] == ["symlink", "symlink", "file"]


def test_chains_follow_the_kernel_limit_of_40_links():
    def chain(length: int) -> bytes:
        links = {f"l{n}": f"l{n + 1}" for n in range(length - 1)}
        links[f"l{length - 1}"] = "file"
        return symlinks(links, files={"file": b"x"})

    assert len(read_all(chain(MAX_SYMLINK_HOPS))) == MAX_SYMLINK_HOPS + 1
    with pytest.raises(ArchiveError, match=f"more than {MAX_SYMLINK_HOPS} symlinks"):
        read_all(chain(MAX_SYMLINK_HOPS + 1))


def test_resolving_links_has_a_bounded_cost(monkeypatch):
    monkeypatch.setattr(archives, "MAX_SYMLINK_STEPS", 50)
    links = {f"l{n}": "c/up/" * 10 + "c" for n in range(5)}
    links["c/up"] = ".."
    with pytest.raises(ArchiveError, match="too many steps"):
        read_all(symlinks(links))


def test_a_chain_of_extension_headers_within_the_limit_is_read():
    assert [m[0] for m in read_all(pax_chain_tar(archives.MAX_EXTENSION_HEADERS_IN_A_ROW - 1))] == ["file"]
