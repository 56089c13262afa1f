"""An offline base image: a root filesystem holding Debian's static busybox, imported into an engine.

No registry on the internet is reachable from where the console may run, so Dockerfiles build `FROM` this.
"""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
import time
from pathlib import Path

from console.engine import Engine

BUSYBOX_CANDIDATES = ["/bin/busybox", "/usr/bin/busybox"]
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


class BaseImageError(Exception):
    pass


def is_static_elf(path: Path) -> bool:
    """True for a 64-bit ELF executable without a program interpreter (PT_INTERP): it needs no libc."""
    with path.open("rb") as handle:
        header = handle.read(64)
        if header[:5] != b"\x7fELF\x02":
            return False
        byteorder = "little" if header[5] == 1 else "big"
        phoff = int.from_bytes(header[32:40], byteorder)
        phentsize = int.from_bytes(header[54:56], byteorder)
        phnum = int.from_bytes(header[56:58], byteorder)
        handle.seek(phoff)
        table = handle.read(phentsize * phnum)
    pt_interp = 3
    return all(
        int.from_bytes(table[i * phentsize : i * phentsize + 4], byteorder) != pt_interp for i in range(phnum)
    )


def find_busybox() -> Path:
    for candidate in BUSYBOX_CANDIDATES:
        path = Path(candidate)
        # Only a static build runs inside an image that has no libc.
        if path.exists() and is_static_elf(path):
            return path
    raise BaseImageError(
        "Debian's busybox-static is not installed: run `apt-get install -y busybox-static` (as root)."
    )


def busybox_version(busybox: Path) -> str:
    banner = subprocess.run([str(busybox)], capture_output=True, text=True).stdout
    match = re.search(r"BusyBox v(\d+\.\d+\.\d+)", banner)
    if not match:
        raise BaseImageError(f"{busybox} does not say which BusyBox version it is")
    return match.group(1)


def root_filesystem_tar(busybox: Path) -> bytes:
    """A tar of a minimal root: /bin/busybox, a link per applet, /etc/passwd and /etc/group, /tmp."""
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout.split()
    buffer = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for folder, mode in [("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("root", 0o700),
                             ("usr", 0o755), ("usr/bin", 0o755), ("var", 0o755), ("home", 0o755)]:
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, now
            archive.addfile(info)
        archive.add(str(busybox), arcname="bin/busybox")
        for applet in applets:
            if applet == "busybox":
                continue
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, "busybox", 0o777, now
            archive.addfile(info)
        # Scripts often start with #!/usr/bin/env.
        info = tarfile.TarInfo("usr/bin/env")
        info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, "/bin/busybox", 0o777, now
        archive.addfile(info)
        for name, text in [("etc/passwd", PASSWD), ("etc/group", GROUP)]:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, now
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def import_base_image(engine: Engine, repository: str, force: bool = False) -> tuple[str, list[str], bool]:
    """Make `repository:<busybox version>` and `repository:latest`; returns (image id, tags, made now)."""
    busybox = find_busybox()
    version = busybox_version(busybox)
    tags = [f"{repository}:{version}", f"{repository}:latest"]
    if not force and all(engine.image_exists(tag) for tag in tags):
        return engine.client.images.get(tags[0]).id, tags, False
    image_id = engine.import_image(
        [root_filesystem_tar(busybox)], repository, version, changes=['ENV PATH=/bin:/usr/bin', 'CMD ["sh"]']
    )
    engine.tag_image(image_id, repository, "latest")
    return image_id, tags, True
