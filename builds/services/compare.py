"""Comparing two of a user's images (the base and the head): their layers, config, files and packages.

One function, `compare_images`, answers both the API (`GET /api/v1/images/compare/?base=&head=`) and the page
(`/images/compare/?base=&head=`). It reads the two image rows, their layers (with their files only when both
images are analysed) and their packages in a fixed number of queries, whatever the images hold, and compares in
memory:

- **layers** by diff_id: the longest common prefix is shared, the base's layers after it are removed, the head's
  added (a layer's content is its diff_id; a layer after a differing one is a different layer of the image even
  when its bytes are the same, as its chain id says). History entries that made no layer belong to the config.
- **config**: env (by variable name), cmd, entrypoint, user, exposed ports and labels; only what differs.
- **files**: each image's merged file system (its layers' recorded changes laid over each other, whiteouts
  applied, as the analysis recorded them), path by path: added, removed, and changed (type, size, permission
  bits or link target differ). The lists are bounded (FILE_LIST_LIMIT each, in path order, `truncated` says
  when one was cut); `counts` are complete and `bytes` is the net difference of the files' sizes.
- **packages** by (ecosystem, name): added, removed and changed versions.

Layers and config come from the image records, so they compare at once; files and packages come from the file
analysis: until both images have theirs, `files.known` / `packages.known` are false and `detail` says why (the
lists and figures are null then, never a guess).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from builds import history
from builds.constants import AnalysisStatus
from builds.models import Build, Image, ImagePackage, Layer
from console import references
from console.constants import JobStatus
from console.errors import DomainError, NotFound

# How many paths each of files.added / removed / changed lists at most (the counts are always complete).
FILE_LIST_LIMIT = 1000
# The longest id a user may give: record ids are small integers.
MAX_ID_DIGITS = 12


class CompareRequestError(DomainError):
    """A missing or malformed `base` / `head`: a 400 naming the parameter."""


# One path of an image's merged file system as its last writer recorded it: (type, size, mode, link). Plain tuples,
# not objects: an image has tens of thousands of paths. mode and link are None where an older analysis did not
# record them (and link for what is not a link).
FileEntry = tuple[str, int, int | None, str | None]


def file_entry(kind: str, size: int, mode: int | None = None, link: str | None = None) -> FileEntry:
    return (kind, size, mode, link)


def _entry_dict(entry: FileEntry) -> dict[str, Any]:
    return {"type": entry[0], "size": entry[1], "mode": entry[2], "link": entry[3]}


# -- the request --------------------------------------------------------------------------------------------------


def parse_image_id(value: str | None, name: str) -> int:
    """The record id a query parameter gives, or CompareRequestError (a 400 for `name`)."""
    value = (value or "").strip()
    if not value:
        raise CompareRequestError(f"Give the {name} image's id: ?base=<id>&head=<id>.", field=name)
    if not value.isdigit() or len(value) > MAX_ID_DIGITS or int(value) == 0:
        raise CompareRequestError(f"The {name} image is named by its record id, a positive number.", field=name)
    return int(value)


def images_to_compare(user, base_value: str | None, head_value: str | None) -> tuple[Image, Image]:
    """The user's two images the parameters name (one query). Another user's image is NotFound exactly as a
    missing one is: the message does not say whether it exists."""
    base_id, head_id = parse_image_id(base_value, "base"), parse_image_id(head_value, "head")
    found = {image.pk: image
             for image in Image.objects.for_user(user).select_related("analysis").filter(pk__in={base_id, head_id})}
    for pk in (base_id, head_id):
        if pk not in found:
            raise NotFound(f"You have no image {pk}.")
    return found[base_id], found[head_id]


def compare_for_user(user, base_value: str | None, head_value: str | None) -> dict[str, Any]:
    """What the API and the page call: the parameters checked, the two images found, compared."""
    base, head = images_to_compare(user, base_value, head_value)
    return compare_images(base, head)


# -- the comparison ---------------------------------------------------------------------------------------------


def compare_images(base: Image, head: Image) -> dict[str, Any]:
    """The differences between `base` and `head` (see the module's docstring for the shape)."""
    layers = _layers_of((base, head))
    shared = shared_prefix(layers[base.pk], layers[head.pk])
    result = {
        "base": _summary(base),
        "head": _summary(head),
        "layers": compare_layers(layers[base.pk], layers[head.pk], shared),
        "config": compare_config(base, head),
    }
    if base.analysis_status == head.analysis_status == AnalysisStatus.SUCCEEDED:
        base_layers, head_layers = _with_files(layers[base.pk], layers[head.pk], shared)
        result["files"] = compare_layer_files(base_layers, head_layers, shared)
    else:
        result["files"] = unknown_files(_not_analysed_detail(base, head))
    result["packages"] = compare_packages_of(base, head)
    return result


def _summary(image: Image) -> dict[str, Any]:
    return {"id": image.pk, "image_id": image.image_id, "tags": list(image.tags),
            "analysis_status": image.analysis_status}


def _not_analysed_detail(base: Image, head: Image) -> str:
    waiting = []
    for role, image in (("base", base), ("head", head)):
        if image.analysis_status == AnalysisStatus.NONE:
            waiting.append(f"the {role} image (#{image.pk}) is not analysed: ask for its analysis")
        elif image.analysis_status != AnalysisStatus.SUCCEEDED:
            waiting.append(f"the {role} image's (#{image.pk}) analysis is {image.analysis_status}")
    return "Not known yet: " + "; ".join(waiting) + ". They are compared once both images are analysed."


def _layers_of(images: tuple[Image, Image]) -> dict[int, list[Layer]]:
    """Both images' layers in one query, in order, without their file lists."""
    found: dict[int, list[Layer]] = {image.pk: [] for image in images}
    for layer in Layer.objects.filter(image__in=list(found)).defer("files").order_by("image_id", "index"):
        found[layer.image_id].append(layer)
    return found


def _with_files(base: list[Layer], head: list[Layer], shared: int) -> tuple[list[Layer], list[Layer]]:
    """The layers with their file lists, in one query: all of the base's, and the head's after the shared ones
    (a shared layer's recorded changes are the base's: the same layer over the same layers changes the same
    paths in the same way)."""
    head_own = [layer for layer in head if not layer.empty_layer][shared:]
    wanted = [layer.pk for layer in base if not layer.empty_layer] + [layer.pk for layer in head_own]
    files = dict(Layer.objects.filter(pk__in=wanted).values_list("pk", "files"))
    for layer in [*base, *head_own]:
        layer.files = files.get(layer.pk)
    return [layer for layer in base if not layer.empty_layer], head_own


# -- layers -----------------------------------------------------------------------------------------------------


def _layer_row(layer: Layer) -> dict[str, Any]:
    return {"index": layer.index, "diff_id": layer.diff_id, "instruction": history.instruction_text(layer.created_by),
            "created_by": layer.created_by, "size": layer.size}


def shared_prefix(base: list[Layer], head: list[Layer]) -> int:
    """How many layers both images start with: the same diff_ids, in order (entries that made no layer are not
    layers: they belong to the config)."""
    shared = 0
    for mine, theirs in zip((layer for layer in base if not layer.empty_layer),
                            (layer for layer in head if not layer.empty_layer), strict=False):
        if not mine.diff_id or mine.diff_id != theirs.diff_id:
            break
        shared += 1
    return shared


def compare_layers(base: list[Layer], head: list[Layer], shared: int | None = None) -> dict[str, Any]:
    """Shared: the layers both images start with (same diff_ids, in order); removed: the base's after them;
    added: the head's after them. A layer after a differing one is another layer even with the same bytes."""
    if shared is None:
        shared = shared_prefix(base, head)
    base_layers = [layer for layer in base if not layer.empty_layer]
    head_layers = [layer for layer in head if not layer.empty_layer]
    return {
        "shared": [_layer_row(layer) for layer in head_layers[:shared]],
        "added": [_layer_row(layer) for layer in head_layers[shared:]],
        "removed": [_layer_row(layer) for layer in base_layers[shared:]],
        "shared_size": sum(layer.size for layer in head_layers[:shared]),
        "added_size": sum(layer.size for layer in head_layers[shared:]),
        "removed_size": sum(layer.size for layer in base_layers[shared:]),
    }


# -- config -----------------------------------------------------------------------------------------------------


def env_dict(env: list[str] | None) -> dict[str, str]:
    """`["A=1", "B"]` -> {"A": "1", "B": ""}; a later duplicate wins, as in the engine."""
    values: dict[str, str] = {}
    for item in env or []:
        name, _, value = str(item).partition("=")
        values[name] = value
    return values


def _by_name(base: dict[str, Any], head: dict[str, Any]) -> list[dict[str, Any]]:
    """Each name whose value differs, with both values (None where one side lacks it), in name order."""
    return [{"name": name, "base": base.get(name), "head": head.get(name)}
            for name in sorted(set(base) | set(head)) if base.get(name) != head.get(name) or
            (name in base) != (name in head)]


def _either(base: Any, head: Any) -> dict[str, Any] | None:
    return None if base == head else {"base": base, "head": head}


def compare_config(base: Image, head: Image) -> dict[str, Any]:
    """What differs in env, cmd, entrypoint, user, exposed ports and labels (None / [] where nothing does)."""
    old, new = base.config or {}, head.config or {}
    old_ports, new_ports = set(old.get("exposed_ports") or []), set(new.get("exposed_ports") or [])
    ports = None
    if old_ports != new_ports:
        ports = {"added": sorted(new_ports - old_ports), "removed": sorted(old_ports - new_ports)}
    return {
        "env": _by_name(env_dict(old.get("env")), env_dict(new.get("env"))),
        "cmd": _either(old.get("cmd"), new.get("cmd")),
        "entrypoint": _either(old.get("entrypoint"), new.get("entrypoint")),
        "user": _either(old.get("user") or "", new.get("user") or ""),
        "ports": ports,
        "labels": _by_name(base.labels or {}, head.labels or {}),
    }


# -- files ------------------------------------------------------------------------------------------------------


def merged_files(layers: list[Layer], files: dict[str, FileEntry] | None = None) -> dict[str, FileEntry]:
    """An image's files as its last layer shows them: each layer's recorded changes laid over the ones before
    (over `files`, changed in place, when given). The analysis recorded every path a whiteout or an opaque folder
    removed, so a removal is one path."""
    files = {} if files is None else files
    for layer in layers:
        for change in layer.files or ():
            if change["change"] == "removed":
                files.pop(change["path"], None)
            else:
                files[change["path"]] = _entry_of(change)
    return files


def _entry_of(change: dict[str, Any]) -> FileEntry:
    return (change["type"], change.get("size") or 0, change.get("mode"), change.get("link"))


def _differs(old: FileEntry, new: FileEntry) -> bool:
    if old[0] != new[0] or old[1] != new[1]:
        return True
    # A figure an older analysis did not record is not a difference.
    if old[2] is not None and new[2] is not None and old[2] != new[2]:
        return True
    return old[3] is not None and new[3] is not None and old[3] != new[3]


def compare_layer_files(base: list[Layer], head_own: list[Layer], shared: int = 0,
                        limit: int = FILE_LIST_LIMIT) -> dict[str, Any]:
    """compare_files of two images' merged views, from their layers with files: all the base's (`base`, of which
    the first `shared` are the head's too) and the head's after those (`head_own`). Only the paths that the
    layers after the shared ones touch can differ, so only those are compared (the counts and bytes are exact)."""
    base_own = base[shared:]
    touched = {change["path"] for layer in [*base_own, *head_own] for change in layer.files or ()}
    old_view: dict[str, FileEntry] = {}
    for layer in base[:shared]:
        for change in layer.files or ():
            path = change["path"]
            if path not in touched:
                continue
            if change["change"] == "removed":
                old_view.pop(path, None)
            else:
                old_view[path] = _entry_of(change)
    new_view = dict(old_view)
    merged_files(base_own, old_view)
    merged_files(head_own, new_view)
    return compare_files(old_view, new_view, limit)


def compare_files(base: dict[str, FileEntry], head: dict[str, FileEntry],
                  limit: int = FILE_LIST_LIMIT) -> dict[str, Any]:
    """Added, removed and changed paths (the first `limit` of each, in path order) and the net bytes."""
    added = sorted(path for path in head if path not in base)
    removed = sorted(path for path in base if path not in head)
    changed = sorted(path for path, entry in head.items() if path in base and _differs(base[path], entry))
    counts = {"added": len(added), "removed": len(removed), "changed": len(changed)}
    return {
        "known": True,
        "detail": "",
        "added": [{"path": path, **_entry_dict(head[path])} for path in added[:limit]],
        "removed": [{"path": path, **_entry_dict(base[path])} for path in removed[:limit]],
        "changed": [{"path": path, "from": _entry_dict(base[path]), "to": _entry_dict(head[path])}
                    for path in changed[:limit]],
        "counts": counts,
        "truncated": any(count > limit for count in counts.values()),
        "bytes": sum(entry[1] for entry in head.values()) - sum(entry[1] for entry in base.values()),
    }


def unknown_files(detail: str) -> dict[str, Any]:
    return {"known": False, "detail": detail, "added": None, "removed": None, "changed": None, "counts": None,
            "truncated": False, "bytes": None}


# -- packages ---------------------------------------------------------------------------------------------------


def compare_packages(base: list[tuple[str, str, str]], head: list[tuple[str, str, str]]) -> dict[str, Any]:
    """Packages as (ecosystem, name, version) rows, compared by (ecosystem, name). A name installed in several
    versions (npm nests them) is one entry whose versions are listed, comma-separated, in order."""
    def versions(rows: list[tuple[str, str, str]]) -> dict[tuple[str, str], str]:
        found: dict[tuple[str, str], set[str]] = {}
        for ecosystem, name, version in rows:
            found.setdefault((ecosystem, name), set()).add(version)
        return {key: ", ".join(sorted(values)) for key, values in found.items()}

    old, new = versions(base), versions(head)
    return {
        "known": True,
        "detail": "",
        "added": [{"ecosystem": key[0], "name": key[1], "version": new[key]} for key in sorted(new.keys() - old)],
        "removed": [{"ecosystem": key[0], "name": key[1], "version": old[key]} for key in sorted(old.keys() - new)],
        "changed": [{"ecosystem": key[0], "name": key[1], "from": old[key], "to": new[key]}
                    for key in sorted(old.keys() & new.keys()) if old[key] != new[key]],
    }


def unknown_packages(detail: str) -> dict[str, Any]:
    return {"known": False, "detail": detail, "added": None, "removed": None, "changed": None}


def compare_packages_of(base: Image, head: Image) -> dict[str, Any]:
    """The packages' differences once both images' packages are recorded (by their analysis), in one query."""
    waiting = [f"the {role} image's (#{image.pk}) packages are not read yet (its analysis reads them)"
               for role, image in (("base", base), ("head", head)) if image.packages_read is None]
    if waiting:
        return unknown_packages("Not known yet: " + "; ".join(waiting) + ".")
    rows: dict[int, list[tuple[str, str, str]]] = {base.pk: [], head.pk: []}
    for image_pk, *package in ImagePackage.objects.filter(image__in=list(rows)).values_list(
            "image_id", "ecosystem", "name", "version"):
        rows[image_pk].append(tuple(package))
    return compare_packages(rows[base.pk], rows[head.pk])


# -- what to compare with ---------------------------------------------------------------------------------------

# How many other images the image page offers to compare with.
CANDIDATE_LIMIT = 10
# How many rows of the same name are read to find them (pulled images are matched by their tags' name).
CANDIDATE_SCAN = 200


def _tag_names(image: Image) -> set[str]:
    return {references.split(tag)[0] for tag in image.tags}


def comparison_candidates(image: Image, limit: int = CANDIDATE_LIMIT) -> list[Image]:
    """The owner's other images of the same repository (the console's repository the image was built in, or
    the name its tags share), newest first: what the image page offers to compare with (one query)."""
    names = _tag_names(image)
    same = Q(repository_id=image.repository_id) if image.repository_id else Q(pk__in=[])
    for name in names:
        # A coarse filter in the database, the exact name in Python below.
        same |= Q(tags__icontains=name)
    if not image.repository_id and not names:
        return []
    found = []
    rows = (Image.objects.filter(owner_id=image.owner_id).filter(same).exclude(pk=image.pk)
            .order_by("-recorded", "-id")[:CANDIDATE_SCAN])
    for other in rows:
        if (image.repository_id and other.repository_id == image.repository_id) or _tag_names(other) & names:
            found.append(other)
            if len(found) == limit:
                break
    return found


def previous_build_image(build: Build) -> Image | None:
    """The image of the owner's latest successful build of the same repository before `build`, when it is
    another image than this build's (the base of "what this build changed")."""
    this = build.images.values_list("pk", flat=True).first()
    return (Image.objects.filter(owner_id=build.owner_id, build__repository_id=build.repository_id,
                                 build__status=JobStatus.SUCCEEDED, build__pk__lt=build.pk)
            .exclude(pk=this).select_related("build").order_by("-build_id", "-id").first())
