"""Ingest in one pass: the upload is hashed while it is unpacked, checked and written, and the stored tar is the
one tarfile would write, byte for byte."""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import tarfile
import threading

import pytest

from builds.constants import ArchiveFormat
from builds.services import repositories
from builds.sources import archives
from builds.sources.archives import DIR, FILE, HARDLINK, SYMLINK, ArchiveError, Limits, Member, read_members
from builds.sources.sourcestore import (
    _with_parent_folders,
    is_stored,
    member_header,
    open_tar,
    size_of,
    source_storage,
    store_archive,
    tar_name,
)
from tests.builds.archive_factory import HELLO_TREE, tar_bytes, zip_bytes

LIMITS = Limits(max_upload_bytes=10**9, max_unpacked_bytes=10**9, max_members=1000, max_ratio=200,
                ratio_floor_bytes=1024 * 1024)
# Incompressible, so that no archive of it looks like a bomb; bigger than a block of the unpacker.
NOISE = random.Random(17).randbytes(3_000_000)
TREE = [*HELLO_TREE, ("deep/" + "x" * 150 + "/ünïcode.txt", b"PAX name"), ("big.bin", NOISE),
        ("link", None, tarfile.SYMTYPE, "README.md"), ("hard", None, tarfile.LNKTYPE, "README.md")]


def store(data: bytes):
    handle = io.BytesIO(data)
    return store_archive(handle, archives.detect_format(handle), size_of(handle), LIMITS)


@pytest.mark.parametrize("compression", ["", "gz", "bz2", "xz"])
def test_the_one_pass_hash_is_the_sha256_of_the_upload(compression):
    data = tar_bytes(TREE, compression)
    stored = store(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert is_stored(stored.sha256)
    assert stored.unpacked_size == sum(len(content) for _, content, *_ in TREE if content is not None)


def test_a_zip_is_hashed_whole_too():
    data = zip_bytes(HELLO_TREE)
    assert store(data).sha256 == hashlib.sha256(data).hexdigest()


def test_bytes_after_the_end_of_the_gzip_count_in_the_hash():
    # More than one read block of trailing bytes: the unpacker hashes them without unpacking them.
    data = tar_bytes(HELLO_TREE, "gz") + b"trailing" * (archives.RAW_BLOCK // 4)
    assert store(data).sha256 == hashlib.sha256(data).hexdigest()


def test_the_stored_tar_is_what_tarfile_writes_for_the_same_members():
    data = tar_bytes(TREE, "gz")
    sha256 = store(data).sha256
    expected = io.BytesIO()
    handle = io.BytesIO(data)
    with tarfile.open(fileobj=expected, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for member in _with_parent_folders(read_members(handle, ArchiveFormat.TAR_GZ, len(data), LIMITS), set()):
            info = tarfile.TarInfo(member.path)
            info.type = {FILE: tarfile.REGTYPE, DIR: tarfile.DIRTYPE, SYMLINK: tarfile.SYMTYPE,
                         HARDLINK: tarfile.LNKTYPE}[member.kind]
            info.mode, info.mtime, info.size, info.linkname = member.mode, member.mtime, member.size, member.linkname
            info.uname = info.gname = ""
            archive.addfile(info, member.open() if member.kind == FILE else None)
    with open_tar(sha256) as stored:
        assert stored.read() == expected.getvalue()


@pytest.mark.parametrize(
    "member",
    [
        Member("a/b.txt", FILE, 1234, 0o644, 1_700_000_000),
        Member("a", DIR, 0, 0o755, 0),
        Member("x" * 99, DIR, 0, 0o700, 5),
        Member("x" * 100, DIR, 0, 0o700, 5),
        Member("s", SYMLINK, 0, 0o777, 1, "../t/" + "y" * 95),
        Member("h", HARDLINK, 0, 0o4755, 1, "a/b.txt"),
        Member("n" * 100, FILE, 8**11 - 1, 0o7777, 8**11 - 1),
        Member("huge", FILE, 8**11, 0o644, 0),
        Member("n" * 101, FILE, 0, 0o644, 0),
        Member("ünï", FILE, 1, 0o644, 0),
        Member("l", SYMLINK, 0, 0o777, 0, "z" * 101),
        Member("old", FILE, 1, 0o644, -1),
    ],
)
def test_a_member_header_is_the_one_tarfile_writes(member):
    info = tarfile.TarInfo(member.path)
    info.type = {FILE: tarfile.REGTYPE, DIR: tarfile.DIRTYPE, SYMLINK: tarfile.SYMTYPE,
                 HARDLINK: tarfile.LNKTYPE}[member.kind]
    info.mode, info.mtime, info.size, info.linkname = member.mode, member.mtime, member.size, member.linkname
    info.uname = info.gname = ""
    assert member_header(member) == info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def truncated_gzip_with_a_whole_tar() -> bytes:
    # The tar's end is inside the data that is left: only the gzip trailer (CRC, size) is cut off.
    data = tar_bytes(HELLO_TREE, "gz")
    return data[:-4]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(tar_bytes(HELLO_TREE, "gz")[:-40], id="truncated inside the tar"),
        pytest.param(truncated_gzip_with_a_whole_tar(), id="only the gzip trailer cut"),
        pytest.param(tar_bytes(HELLO_TREE, "gz")[:-8] + b"\0" * 8, id="wrong CRC"),
        pytest.param(tar_bytes(HELLO_TREE, "bz2")[:-10], id="truncated bzip2"),
        pytest.param(tar_bytes(HELLO_TREE, "xz")[:-10], id="truncated xz"),
    ],
)
def test_a_truncated_or_damaged_compressed_upload_is_refused_and_nothing_stored(data):
    with pytest.raises(ArchiveError, match="truncated or corrupt"):
        store(data)
    assert not is_stored(hashlib.sha256(data).hexdigest())


def test_a_bomb_is_refused_without_being_held_in_memory():
    bomb = gzip.compress(tar_bytes([("zeros", b"\0" * (64 * 1024 * 1024))]), 9)
    with pytest.raises(ArchiveError, match="decompression bomb"):
        store(bomb)


def unpacker_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "archive-unpacker"]


def test_a_refused_archive_leaves_no_unpacker_thread_behind():
    many = tar_bytes([(f"f{n}", NOISE[n * 10_000 : (n + 1) * 10_000]) for n in range(300)]
                     + [("/etc/passwd", b"x")], "gz")
    with pytest.raises(ArchiveError, match="absolute path"):
        store(many)
    assert unpacker_threads() == []


def test_a_reader_that_stops_early_stops_the_unpacker():
    data = tar_bytes([(f"f{n}", NOISE) for n in range(4)], "gz")
    members = read_members(io.BytesIO(data), ArchiveFormat.TAR_GZ, len(data), LIMITS)
    next(members)
    members.close()
    assert unpacker_threads() == []


def test_the_same_upload_twice_is_checked_again_and_stored_once(repository):
    data = tar_bytes(HELLO_TREE, "gz")
    first = repositories.add_archive_source(repository, io.BytesIO(data), "a.tgz")
    second = repositories.add_archive_source(repository, io.BytesIO(data), "b.tgz")
    assert first.sha256 == second.sha256 == hashlib.sha256(data).hexdigest()
    assert (first.file_count, first.unpacked_size) == (second.file_count, second.unpacked_size)


def test_a_member_read_in_part_or_not_at_all_leaves_the_next_one_whole():
    files = [("a", NOISE[:5000]), ("b", NOISE[5000:5700]), ("c", NOISE[:1])]
    data = tar_bytes(files, "gz")
    seen = []
    for member in read_members(io.BytesIO(data), ArchiveFormat.TAR_GZ, len(data), LIMITS):
        if member.path == "a":
            seen.append(member.open().read(10))
        elif member.path == "b":
            continue
        else:
            seen.append(member.open().read())
    assert seen == [NOISE[:10], NOISE[:1]]


def test_a_tar_cut_inside_a_members_padding_is_refused():
    data = tar_bytes([("a", NOISE[:700]), ("b", NOISE[:10])])
    # The header (512) and 700 bytes of data are there, the padding to 1,024 is not.
    with pytest.raises(ArchiveError, match="truncated or corrupt"):
        store(data[: 512 + 800])


def test_half_of_an_interrupted_save_is_replaced():
    data = tar_bytes(HELLO_TREE, "gz")
    sha256 = hashlib.sha256(data).hexdigest()
    source_storage().save(tar_name(sha256), io.BytesIO(b"the first bytes of a copy that was cut"))
    assert not is_stored(sha256)
    store(data)
    with open_tar(sha256) as stored:
        assert tarfile.open(fileobj=stored).getnames()[0] == "Dockerfile"


def test_the_hash_covers_the_upload_wherever_the_handle_was_left():
    data = tar_bytes(HELLO_TREE, "gz")
    handle = io.BytesIO(data)
    fmt = archives.detect_format(handle)
    handle.seek(100)
    assert store_archive(handle, fmt, len(data), LIMITS).sha256 == hashlib.sha256(data).hexdigest()
