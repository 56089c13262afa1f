"""Build contexts: a stored source, cut to one context folder and filtered by its `.dockerignore`.

The ignore file is the one BuildKit's Dockerfile frontend reads (moby/buildkit frontend/dockerfile/builder, the
v0.8 in engine 20.10, and dockerui today): `<Dockerfile path>.dockerignore`, relative to the context folder like
the Dockerfile, when it exists, in place of the context root's `.dockerignore` (not merged with it; an empty one
still replaces it). The file that is not used is an ordinary file of the context.

`plan_context` says what the Docker CLI would send (and why each file is left out); `stream_context` produces
the tar for the engine by copying byte ranges of the stored tar (builds/sources/sourcestore.py), so nothing is
extracted to disk and memory stays flat whatever the size of the source.
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings

from builds.models import Source
from builds.sources.archives import DIR, FILE, HARDLINK, ArchiveError, clean_path
from builds.sources.dockerignore import DockerIgnore, DockerIgnoreError
from builds.sources.sourcestore import IndexEntry, open_tar, read_file, read_index
from console.errors import DomainError

DOCKERIGNORE = ".dockerignore"
MAX_DOCKERIGNORE_BYTES = 1024 * 1024
COPY_CHUNK = 1024 * 1024
END_OF_ARCHIVE = b"\0" * (2 * tarfile.BLOCKSIZE)

# Names that usually hold credentials; a warning, since some projects do mean to ship them.
SECRET_FILE_NAMES = {".env", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", ".npmrc", ".pypirc", ".netrc",
                     ".git-credentials", ".htpasswd"}
SECRET_SUFFIXES = (".pem", ".key", ".p12", ".pfx")
SECRET_FOLDERS = {".git", ".aws", ".ssh", ".gnupg", ".docker"}
BIG_FOLDERS = {"node_modules", "vendor", "bower_components", ".venv", "__pycache__"}


class ContextError(DomainError):
    """The context cannot be made as asked (no such Dockerfile or folder, a bad .dockerignore)."""


@dataclass(frozen=True)
class ContextFile:
    path: str
    kind: str
    size: int
    sent: bool
    pattern: str | None


@dataclass
class ContextPlan:
    dockerfile: str
    path: str
    dockerignore: str
    files: list[ContextFile] = field(default_factory=list)
    # Which ignore file `dockerignore` is the text of, relative to the context folder ("" when there is none).
    dockerignore_file: str = ""

    @property
    def included(self) -> list[ContextFile]:
        return [f for f in self.files if f.sent and f.kind != DIR]

    @property
    def excluded(self) -> list[ContextFile]:
        return [f for f in self.files if not f.sent and f.kind != DIR]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.included)

    def warnings(self) -> list[dict[str, str]]:
        return context_warnings(self.included, self.size)

    def as_dict(self) -> dict:
        included = self.included
        return {
            "dockerfile": self.dockerfile,
            "path": self.path,
            "included": [f.path for f in included],
            "excluded": [f.path for f in self.excluded],
            "file_count": len(included),
            "size": sum(f.size for f in included),
            "warnings": context_warnings(included, sum(f.size for f in included)),
        }


def _clean_relative(value: str, what: str) -> str:
    try:
        cleaned = clean_path(value.strip())
    except ArchiveError:
        raise ContextError(f"The {what} must be a relative path inside the source: {value!r}.") from None
    return cleaned


def _relative_to(path: str, folder: str) -> str | None:
    if not folder:
        return path
    if path == folder:
        return ""
    if path.startswith(folder + "/"):
        return path[len(folder) + 1 :]
    return None


def dockerfile_ignore_name(dockerfile: str) -> str:
    """The Dockerfile-specific ignore file of `dockerfile` (a clean path relative to the context folder), which
    BuildKit reads in place of `.dockerignore` when it exists: `Dockerfile.dockerignore`,
    `build/app.Dockerfile.dockerignore` for `-f build/app.Dockerfile`."""
    return dockerfile + DOCKERIGNORE


def dockerfile_candidates(source: Source) -> list[str]:
    """Paths in the source that look like Dockerfiles, to suggest when the asked one is missing."""
    found = []
    for entry in read_index(source.sha256):
        name = posixpath.basename(entry.path).lower()
        if entry.kind != DIR and (name.startswith("dockerfile") or name.endswith(".dockerfile")
                                  or name == "containerfile"):
            found.append(entry.path)
    return sorted(found)


@dataclass
class _Resolved:
    folder: str
    dockerfile: str
    dockerignore: str
    entries: list[tuple[str, IndexEntry]]
    # The ignore file read ("" when neither exists); `dockerfile_specific` when it is <dockerfile>.dockerignore.
    dockerignore_file: str = ""

    @property
    def dockerfile_specific(self) -> bool:
        return bool(self.dockerignore_file) and self.dockerignore_file != DOCKERIGNORE

    def ignore(self) -> DockerIgnore:
        """The patterns in force, with what the build re-includes (ContextError for a file Docker refuses)."""
        try:
            parsed = DockerIgnore.parse(self.dockerignore)
        except DockerIgnoreError as exc:
            raise ContextError(f"The {self.dockerignore_file or DOCKERIGNORE} cannot be used: {exc}") from None
        return parsed.for_build(self.dockerfile, dockerfile_specific=self.dockerfile_specific)


def _resolve(source: Source, dockerfile: str, path: str, keep_entries: bool) -> _Resolved:
    """Check the context folder and the Dockerfile exist, and read the ignore file, in one pass.

    The ignore file is `<dockerfile>.dockerignore` when the context holds it as a regular file, else
    `.dockerignore` (BuildKit's rule)."""
    folder = _clean_relative(path or ".", "context folder")
    dockerfile_rel = _clean_relative(dockerfile or "Dockerfile", "Dockerfile path")
    if not dockerfile_rel:
        raise ContextError("The Dockerfile path is empty.")
    entries: list[tuple[str, IndexEntry]] = []
    folder_exists = not folder
    specific_name = dockerfile_ignore_name(dockerfile_rel)
    dockerignore_entry = specific_entry = dockerfile_entry = None
    for entry in read_index(source.sha256):
        relative = _relative_to(entry.path, folder)
        if relative is None:
            continue
        folder_exists = True
        if relative == "":
            continue
        if keep_entries:
            entries.append((relative, entry))
        if relative == DOCKERIGNORE and entry.kind == FILE:
            dockerignore_entry = entry
        if relative == specific_name and entry.kind == FILE:
            specific_entry = entry
        if relative == dockerfile_rel and entry.kind != DIR:
            dockerfile_entry = entry
    if not folder_exists:
        raise ContextError(f"The source has no folder {folder!r}.")
    if dockerfile_entry is None:
        candidates = dockerfile_candidates(source)
        where = f" in {folder!r}" if folder else ""
        known = ", ".join(candidates[:20]) if candidates else "none"
        raise ContextError(f"There is no {dockerfile_rel!r}{where}. Dockerfiles in this source: {known}.")
    text, name = "", ""
    used = specific_entry if specific_entry is not None else dockerignore_entry
    if used is not None:
        name = specific_name if used is specific_entry else DOCKERIGNORE
        if used.size > MAX_DOCKERIGNORE_BYTES:
            raise ContextError(f"The {name} is larger than 1 MB.")
        text = read_file(source.sha256, used).decode("utf-8", "replace")
    return _Resolved(folder, dockerfile_rel, text, entries, name)


def context_dockerignore(source: Source, dockerfile: str = "Dockerfile", path: str = ".") -> tuple[str, str]:
    """The ignore file a context for `dockerfile` uses, relative to the context folder ("" when there is none),
    and its text; ContextError as plan_context raises it."""
    resolved = _resolve(source, dockerfile, path, keep_entries=False)
    resolved.ignore()
    return resolved.dockerignore_file, resolved.dockerignore


def plan_dockerfile_text(source: Source, dockerfile: str = "Dockerfile", path: str = ".") -> str:
    """The text of the Dockerfile a context would build, checked to exist (ContextError otherwise)."""
    folder = _clean_relative(path or ".", "context folder")
    dockerfile_rel = _clean_relative(dockerfile or "Dockerfile", "Dockerfile path")
    wanted = f"{folder}/{dockerfile_rel}" if folder else dockerfile_rel
    for entry in read_index(source.sha256):
        if entry.path == wanted and entry.kind == FILE:
            if entry.size > MAX_DOCKERIGNORE_BYTES:
                raise ContextError("The Dockerfile is larger than 1 MB.")
            return read_file(source.sha256, entry).decode("utf-8", "replace")
    _resolve(source, dockerfile, path, keep_entries=False)
    raise ContextError(f"{wanted!r} is not a regular file.")


def plan_context(source: Source, dockerfile: str = "Dockerfile", path: str = ".") -> ContextPlan:
    """What the context for `dockerfile` (relative to the context folder `path`) holds, file by file."""
    resolved = _resolve(source, dockerfile, path, keep_entries=True)
    ignore = resolved.ignore()
    plan = ContextPlan(dockerfile=resolved.dockerfile, path=resolved.folder or ".", dockerignore=resolved.dockerignore,
                       dockerignore_file=resolved.dockerignore_file)
    for relative, entry in resolved.entries:
        excluded = ignore.excludes(relative)
        deciding = ignore.deciding_pattern(relative) if excluded else None
        plan.files.append(
            ContextFile(relative, entry.kind, entry.size, not excluded, deciding.text if deciding else None)
        )
    return plan


def context_warnings(included: list[ContextFile], total_size: int) -> list[dict[str, str]]:
    """Likely secrets, big dependency folders and a large total, among the files that will be sent."""
    warnings: list[dict[str, str]] = []
    flagged_folders: dict[str, str] = {}
    big: dict[str, list[int]] = {}
    for item in included:
        parts = item.path.split("/")
        for depth, part in enumerate(parts[:-1]):
            folder = "/".join(parts[: depth + 1]) + "/"
            if part in SECRET_FOLDERS and folder not in flagged_folders:
                flagged_folders[folder] = f"likely secrets: the {part}/ folder is sent to the engine"
            if part in BIG_FOLDERS:
                stats = big.setdefault(folder, [0, 0])
                stats[0] += 1
                stats[1] += item.size
                break
        name = parts[-1]
        lower = name.lower()
        is_env = lower == ".env" or lower.startswith(".env.")
        if (is_env or name in SECRET_FILE_NAMES or lower.endswith(SECRET_SUFFIXES)) and not any(
            item.path.startswith(folder) for folder in flagged_folders
        ):
            warnings.append({"path": item.path, "reason": f"likely secret: {name} is sent to the engine"})
    warnings.extend({"path": folder, "reason": reason} for folder, reason in flagged_folders.items())
    for folder, (count, size) in big.items():
        warnings.append({"path": folder, "reason": f"big folder: {count} files, {size:,} bytes are sent; "
                                                   "add it to .dockerignore if the image installs it"})
    if total_size > settings.CONSOLE_CONTEXT_WARN_BYTES:
        warnings.append({"path": ".", "reason": f"the context is {total_size:,} bytes, over "
                                                f"{settings.CONSOLE_CONTEXT_WARN_BYTES:,}"})
    return sorted(warnings, key=lambda w: w["path"])


def stream_context(source: Source, dockerfile: str = "Dockerfile", path: str = ".",
                   replace: dict[str, bytes] | None = None) -> Iterator[bytes]:
    """The context tar for the engine, in chunks of at most 1 MB, cut from the stored tar by byte ranges.

    The checks (folder, Dockerfile, ignore file) run before the first chunk is asked for, so a caller learns
    of a ContextError before it starts sending anything. `replace` maps paths relative to the context folder to
    the bytes sent for them instead (as regular files); those the context lacks are added at its end.
    """
    resolved = _resolve(source, dockerfile, path, keep_entries=False)
    ignore = resolved.ignore()
    return _stream(source.sha256, resolved.folder, ignore, replace or {})


def _replacement(relative: str, content: bytes, entry: IndexEntry | None) -> bytes:
    """A regular-file member holding `content` (keeping the replaced member's mode and time), padded."""
    info = tarfile.TarInfo(relative)
    info.type, info.size, info.uid, info.gid = tarfile.REGTYPE, len(content), 0, 0
    info.mode, info.mtime = (entry.mode, entry.mtime) if entry is not None else (0o644, 0)
    padding = -len(content) % tarfile.BLOCKSIZE
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape") + content + b"\0" * padding


def _stream(sha256: str, folder: str, ignore: DockerIgnore, replace: dict[str, bytes]) -> Iterator[bytes]:
    replaced: set[str] = set()
    sent_files: dict[str, IndexEntry] = {}
    stored_files: dict[str, IndexEntry] = {}
    with open_tar(sha256) as tar:
        run_start = run_end = -1
        skipped = ""

        def copy(start: int, end: int) -> Iterator[bytes]:
            tar.seek(start)
            remaining = end - start
            while remaining > 0:
                chunk = tar.read(min(COPY_CHUNK, remaining))
                if not chunk:
                    raise ContextError("The stored source is shorter than its index: it is damaged.")
                remaining -= len(chunk)
                yield chunk

        for entry in read_index(sha256):
            if entry.kind == FILE:
                stored_files[entry.path] = entry
            if skipped and entry.path.startswith(skipped):
                continue
            relative = _relative_to(entry.path, folder)
            if not relative:
                continue
            if entry.kind == DIR and ignore.skips_folder(relative):
                # Archives list a folder before what it holds: pass over all of it by its prefix.
                skipped = entry.path + "/"
                continue
            if ignore.excludes(relative):
                continue
            if relative in replace and entry.kind != DIR:
                if run_start >= 0:
                    yield from copy(run_start, run_end)
                    run_start = -1
                replaced.add(relative)
                # Not in sent_files: a hard link to it still gets the stored bytes.
                yield _replacement(relative, replace[relative], entry)
                continue
            if entry.kind == FILE:
                sent_files[entry.path] = entry
            if folder or entry.kind == HARDLINK:
                # The header changes (new name, or a link whose target is not sent): write it anew.
                if run_start >= 0:
                    yield from copy(run_start, run_end)
                    run_start = -1
                header, data_entry = _rewritten_header(entry, relative, folder, sent_files, stored_files)
                yield header
                if data_entry is not None:
                    yield from copy(data_entry.data, data_entry.end)
                continue
            # Neighbouring members are copied as one range: for a typical tree that is one big copy.
            if run_start >= 0 and entry.start == run_end:
                run_end = entry.end
            else:
                if run_start >= 0:
                    yield from copy(run_start, run_end)
                run_start, run_end = entry.start, entry.end
        if run_start >= 0:
            yield from copy(run_start, run_end)
    for relative, content in replace.items():
        if relative not in replaced:
            yield _replacement(relative, content, None)
    yield END_OF_ARCHIVE


def _rewritten_header(
    entry: IndexEntry, relative: str, folder: str, sent: dict[str, IndexEntry], stored: dict[str, IndexEntry]
) -> tuple[bytes, IndexEntry | None]:
    info = tarfile.TarInfo(relative)
    info.mode, info.mtime, info.uid, info.gid = entry.mode, entry.mtime, 0, 0
    data_entry = None
    if entry.kind == HARDLINK:
        target_relative = _relative_to(entry.linkname, folder)
        if entry.linkname in sent and target_relative:
            info.type, info.linkname = tarfile.LNKTYPE, target_relative
        else:
            # The link's target stays behind: send the bytes themselves, as a copy of the tree would.
            data_entry = stored.get(entry.linkname)
            if data_entry is None:
                raise ContextError(f"The hard link {entry.path!r} points to {entry.linkname!r}, which is not a file.")
            info.type, info.size = tarfile.REGTYPE, data_entry.size
    elif entry.kind == FILE:
        info.type, info.size = tarfile.REGTYPE, entry.size
        data_entry = entry
    elif entry.kind == DIR:
        info.type = tarfile.DIRTYPE
    else:
        info.type, info.linkname = tarfile.SYMTYPE, entry.linkname
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"), data_entry
