"""The stored tar and its index agree byte for byte: contexts are cut from them by offsets."""

from __future__ import annotations

import io
import tarfile

from builds.services import repositories
from builds.sources.sourcestore import open_tar, read_file, read_index
from tests.builds.archive_factory import HELLO_TREE, tar_bytes


def test_every_index_entry_points_at_its_member(repository):
    long_name = "deep/" + "x" * 150 + "/ünïcode file.txt"
    tree = [*HELLO_TREE, (long_name, b"long name, PAX header"), ("big.bin", b"\x01" * 70_000)]
    source = repositories.add_archive_source(repository, io.BytesIO(tar_bytes(tree, "gz")), "t.tgz")
    entries = {entry.path: entry for entry in read_index(source.sha256)}
    assert set(entries) >= {name for name, _ in tree}
    for name, content in tree:
        assert read_file(source.sha256, entries[name]) == content
    with open_tar(source.sha256) as handle:
        for name, _ in tree:
            entry = entries[name]
            handle.seek(entry.start)
            member_bytes = handle.read(entry.end - entry.start)
            with tarfile.open(fileobj=io.BytesIO(member_bytes + b"\0" * 1024)) as single:
                (info,) = single.getmembers()
                assert info.name == name
                assert info.uid == 0 and info.gid == 0
