"""The archive reader on its own: formats by content, and every hostile archive refused with a reason."""

from __future__ import annotations

import io
import tarfile

import pytest

from builds.archives import ArchiveError, Limits, detect_format, read_members
from builds.constants import ArchiveFormat
from tests.builds.archive_factory import HELLO_TREE, gnu_tar_bytes, gzip_bytes, tar_bytes, zip_bytes

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
