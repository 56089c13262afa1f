"""Small archives made in memory for the tests: well-formed ones and every kind of hostile one."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile


def tar_bytes(members: list[tuple], compression: str = "") -> bytes:
    """members: (name, content bytes) for files, (name, None, type, linkname) for other kinds."""
    buffer = io.BytesIO()
    mode = f"w:{compression}" if compression else "w"
    with tarfile.open(fileobj=buffer, mode=mode, format=tarfile.PAX_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as archive:
        for member in members:
            name, content = member[0], member[1]
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if content is not None:
                info.size = len(content)
                info.mode = 0o644
                archive.addfile(info, io.BytesIO(content))
            else:
                info.type = member[2]
                info.linkname = member[3] if len(member) > 3 else ""
                info.mode = 0o755 if info.type == tarfile.DIRTYPE else 0o644
                archive.addfile(info)
    return buffer.getvalue()


def gnu_tar_bytes(name: bytes, content: bytes) -> bytes:
    """A GNU-format tar whose member name is raw bytes (to make names that are not UTF-8)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as archive:
        info = tarfile.TarInfo(name.decode("utf-8", "surrogateescape"))
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def zip_bytes(members: list[tuple[str, bytes]], symlinks: dict[str, str] | None = None,
              unix_modes: dict[str, int] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 2, 3, 4, 5))
            info.external_attr = (unix_modes or {}).get(name, 0o100644) << 16
            archive.writestr(info, content)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 2, 3, 4, 5))
            info.external_attr = 0o120777 << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data)


HELLO_TREE = [
    ("Dockerfile", b"FROM busybox:1.35.0\nCOPY . /app\n"),
    (".dockerignore", b"*.log\nsecrets/\n"),
    ("app/main.sh", b"#!/bin/sh\necho hello\n"),
    ("app/util/helpers.sh", b"helpers\n"),
    ("debug.log", b"noise\n"),
    ("secrets/token.txt", b"do-not-ship\n"),
    ("README.md", b"# hello\n"),
]


def tar_with_pax(name: str, content: bytes, pax: dict[str, str], compression: str = "", copies: int = 1) -> bytes:
    """A PAX tar of `copies` files (name, name.1, ...), each with an extension header carrying `pax` records."""
    buffer = io.BytesIO()
    mode = f"w:{compression}" if compression else "w"
    with tarfile.open(fileobj=buffer, mode=mode, format=tarfile.PAX_FORMAT) as archive:
        for copy in range(copies):
            info = tarfile.TarInfo(f"{name}.{copy}" if copy else name)
            info.size, info.mtime, info.pax_headers = len(content), 1_700_000_000, dict(pax)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def gnu_longname_tar(name: str, content: bytes) -> bytes:
    """A GNU-format tar: a name over 100 bytes goes into a GNU long-name header before the member."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def pax_chain_tar(headers: int) -> bytes:
    """A tar whose one file is preceded by `headers` PAX extension headers in a row."""
    record = b"13 comment=x\n"
    blocks = []
    for _ in range(headers):
        info = tarfile.TarInfo("././@PaxHeader")
        info.type, info.size = tarfile.XHDTYPE, len(record)
        blocks.append(info.tobuf(tarfile.USTAR_FORMAT) + record + b"\0" * (tarfile.BLOCKSIZE - len(record)))
    info = tarfile.TarInfo("file")
    info.size = 1
    blocks.append(info.tobuf(tarfile.USTAR_FORMAT) + b"x" + b"\0" * (tarfile.BLOCKSIZE - 1))
    return b"".join(blocks) + b"\0" * (2 * tarfile.BLOCKSIZE)


def zip_symlink_with_body(name: str, body: bytes) -> bytes:
    """A zip whose symlink member's body (its target) is `body`, deflated: a few bytes can declare megabytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(name, date_time=(2024, 1, 2, 3, 4, 5))
        info.external_attr = 0o120777 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, body)
    return buffer.getvalue()


def zip_with_extra(name: str, content: bytes, extra_bytes: int) -> bytes:
    """A zip whose one member carries an (unknown, well-formed) extra field of `extra_bytes` bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(name, date_time=(2024, 1, 2, 3, 4, 5))
        info.external_attr = 0o100644 << 16
        info.extra = struct.pack("<HH", 0xCAFE, extra_bytes) + b"e" * extra_bytes
        archive.writestr(info, content)
    return buffer.getvalue()


def symlinks(links: dict[str, str], files: dict[str, bytes] | None = None) -> bytes:
    """A tar of files and then symlinks (name -> target), in that order."""
    members: list[tuple] = [(name, content) for name, content in (files or {}).items()]
    members += [(name, None, tarfile.SYMTYPE, target) for name, target in links.items()]
    return tar_bytes(members)
