"""Image records: what the engine says of an image a user built or pulled, with its layer history."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.utils.dateparse import parse_datetime

from builds import access, layermap
from builds.constants import LABEL_BUILD_ID, AnalysisStatus, ImageOrigin
from builds.models import Build, Image, ImageQuerySet, Layer, SharedImage
from builds.savedimage import SavedImageError, read_config
from builds.services.analysis import request_analysis_by_id
from builds.services.builds import mask_secrets
from builds.services.options import OptionError, check_tag
from console.engine import Engine, EngineConflict, EngineError, EngineNotFound, imagestore
from console.engine.images import export_image, image_history, inspect_image
from console.engine.registry import remove_tag
from console.errors import Conflict

log = logging.getLogger(__name__)


def image_config(config: dict) -> dict:
    """The parts of an image's config users look at, in the console's field names."""
    config = config or {}
    return {
        "env": config.get("Env") or [],
        "cmd": config.get("Cmd"),
        "entrypoint": config.get("Entrypoint"),
        "user": config.get("User") or "",
        "workdir": config.get("WorkingDir") or "",
        "exposed_ports": sorted((config.get("ExposedPorts") or {}).keys()),
        "volumes": sorted((config.get("Volumes") or {}).keys()),
        "healthcheck": config.get("Healthcheck"),
    }


def layers_from_history(history: list[dict], diff_ids: list[str], made: list[bool] | None) -> list[dict]:
    """History entries, oldest first, each with the diff_id of the layer it made ("" for none) as `made` says
    (`layer_makers`, oldest first). With `made` None, the image's own history does not account for its layers (a
    tool that wrote less history than layers): one row per layer, with no instruction and no size."""
    if made is None:
        return [{"index": index, "history_id": "", "diff_id": diff_id, "created_by": "", "size": 0,
                 "empty_layer": False, "created": None} for index, diff_id in enumerate(diff_ids)]
    layers, remaining = [], iter(diff_ids)
    for index, (entry, makes_layer) in enumerate(zip(reversed(history), made, strict=True)):
        created = entry.get("Created")
        layers.append({
            "index": index,
            "history_id": entry.get("Id") or "",
            "diff_id": next(remaining) if makes_layer else "",
            "created_by": entry.get("CreatedBy") or "",
            "size": int(entry.get("Size") or 0),
            "empty_layer": not makes_layer,
            "created": datetime.fromtimestamp(created, tz=UTC) if created else None,
        })
    return layers


def layer_makers(engine: Engine, image_id: str, history: list[dict], diff_ids: list[str]) -> list[bool] | None:
    """For each history entry (oldest first), whether it made a layer: exact, from the cheapest facts that settle
    it (builds/layermap.py), so that the record needs no correction once the files are analysed. None when the
    image's own config does not account for its layers (then no instruction can be given a layer).

    In order: the entries' instructions, sizes and the count of layers (settles every BuildKit build on engine
    20.10 and most others); an analysed record of the same image id (the id is the config's digest: the same
    history); the classic builder's intermediate images, which the history names, for the entries left open; and
    last the image config itself, read from `docker save` (exact, but the engine exports the whole image first:
    about 2 s for 300 MB), for an image pulled or built FROM a base whose history holds both a zero-size layer and
    a step that changed nothing. Raises EngineError when the engine cannot export it."""
    entries = list(reversed(history))
    makes = [layermap.entry_makes(entry.get("CreatedBy") or "", entry.get("Comment") or "", int(entry.get("Size") or 0))
             for entry in entries]
    decided = layermap.settle(makes, len(diff_ids))
    if layermap.is_settled(decided):
        return decided
    known = _analysed_makers(image_id, len(entries), len(diff_ids))
    if known is not None:
        return known
    if decided is not None:
        counts = _counts_through(engine, entries, decided, diff_ids)
        if counts:
            decided = layermap.settle(makes, len(diff_ids), counts)
            if layermap.is_settled(decided):
                return decided
    log.info("Image %s: its history leaves open which entries made layers; reading its config", image_id[:19])
    try:
        config = read_config(export_image(engine, image_id), image_id)
    except SavedImageError as exc:
        raise EngineError(f"Reading the config of image {image_id[:19]}: {exc}") from exc
    made = layermap.from_config(config, len(entries), len(diff_ids))
    if made is None:
        log.warning("Image %s: its config's history does not account for its %s layers: they are recorded "
                    "without instructions", image_id[:19], len(diff_ids))
    return made


def _analysed_makers(image_id: str, entries: int, layer_count: int) -> list[bool] | None:
    """The layers of an analysed record of the same image (any owner's: they are the engine's, not the user's);
    the analysis checked them against the config."""
    image = Image.objects.filter(image_id=image_id, analysis__status=AnalysisStatus.SUCCEEDED).order_by("pk").first()
    if image is None:
        return None
    made = [not empty for empty in image.layers.order_by("index").values_list("empty_layer", flat=True)]
    return made if len(made) == entries and made.count(True) == layer_count else None


def _counts_through(engine: Engine, entries: list[dict], decided: list[bool | None],
                    diff_ids: list[str]) -> dict[int, int]:
    """{entry index: the number of layers up to and including it} for the open entries and the ones before them,
    from the images the engine keeps for them: the classic builder commits an image per step, and the history
    names each entry's (the engine walks the image's parents), whose layers are those up to that entry. An entry
    with no image (`<missing>`: BuildKit keeps none, nor does a pull) gives no count."""
    wanted = sorted({index for open_index, state in enumerate(decided) if state is None
                     for index in (open_index - 1, open_index) if index >= 0})
    counts: dict[int, int] = {}
    for index in wanted:
        ancestor = str(entries[index].get("Id") or "")
        if not ancestor.startswith("sha256:"):
            continue
        try:
            layers = (inspect_image(engine, ancestor).get("RootFS") or {}).get("Layers") or []
        except EngineNotFound:
            continue
        # An ancestor's layers are the first of the image's; anything else is not its ancestor.
        if layers == diff_ids[:len(layers)]:
            counts[index] = len(layers)
    return counts


def record_image(owner, engine: Engine, reference: str, origin: str, build: Build | None = None,
                 repository=None, secrets: dict[str, str] | None = None, names: list[str] | None = None) -> Image:
    """Create or refresh the owner's record of an image on the build engine, with its layers.

    `names` are tags the user just gave it (a build's tags, a pull's reference, a new tag). The record's tags are
    the user's names as the user wrote them, kept while the engine still gives the image that name in the user's
    own namespace (builds/access.py); a name that moved to another of the user's images leaves the older record.

    `secrets` are masked in the layers' instructions: the classic builder writes build args into the
    history (`|1 TOKEN=value /bin/sh -c ...`). Which instruction made which layer is exact from the start
    (`layer_makers`); the file analysis only adds each layer's files.
    """
    details = inspect_image(engine, reference)
    history = image_history(engine, reference)
    for entry in history:
        entry["CreatedBy"] = mask_secrets(entry.get("CreatedBy") or "", secrets or {})
    diff_ids = (details.get("RootFS") or {}).get("Layers") or []
    layers = layers_from_history(history, diff_ids, layer_makers(engine, details["Id"], history, diff_ids))
    steps = {step.layer_id: step for step in build.steps.exclude(layer_id="")} if build else {}
    engine_names = access.user_names(owner, details.get("RepoTags") or [])
    # Names the engine moved to this image leave the owner's older records first, each in its own short update,
    # so the record's own transaction below locks no other image (an analysis may be writing one).
    forget_moved_names(owner, details["Id"], [tag for tag in names or []
                                              if access.engine_name(owner, tag) in engine_names])
    with transaction.atomic():
        existing = Image.objects.for_user(owner).filter(image_id=details["Id"]).first()
        candidates = list(dict.fromkeys([*(existing.tags if existing else []), *(names or [])]))
        repo_tags = set(details.get("RepoTags") or [])
        # A record from before names were namespaced keeps its plain name while the engine still gives it that
        # name (the record claimed it then); new names are always the user's own.
        legacy = set(existing.tags if existing else []) & repo_tags
        tags = [tag for tag in candidates if access.engine_name(owner, tag) in engine_names or tag in legacy]
        image, created = Image.objects.update_or_create(
            owner=owner,
            image_id=details["Id"],
            defaults={
                "tags": tags,
                "digests": details.get("RepoDigests") or [],
                "size": details.get("Size") or 0,
                "created": parse_datetime(details["Created"]) if details.get("Created") else None,
                "architecture": details.get("Architecture") or "",
                "os": details.get("Os") or "",
                "labels": (details.get("Config") or {}).get("Labels") or {},
                "config": image_config(details.get("Config") or {}),
                "origin": origin,
                **({"build": build, "repository": build.repository} if build else {}),
                **({"repository": repository} if repository and not build else {}),
            },
        )
        kept = image.layers.all()
        if not created and image.analysis_status == AnalysisStatus.SUCCEEDED and kept.count() == len(layers):
            # The same image again (a build served from the cache): its analysed layers, with their files, stay;
            # only the steps that made them change.
            for layer in layers:
                step = steps.get(layer["history_id"].removeprefix("sha256:")[:12])
                kept.filter(index=layer["index"]).update(build_step=step)
            return image
        kept.delete()
        Layer.objects.bulk_create(
            Layer(
                image=image,
                index=layer["index"],
                diff_id=layer["diff_id"],
                created_by=layer["created_by"],
                size=layer["size"],
                empty_layer=layer["empty_layer"],
                created=layer["created"],
                build_step=steps.get(layer["history_id"].removeprefix("sha256:")[:12]),
            )
            for layer in layers
        )
    return image


def forget_records(records: QuerySet[Image]) -> int:
    """Delete image records (with their layers, packages and analyses), each row locked first, in id order: an
    analysis asked for or stored meanwhile waits, then finds the record gone, instead of adding a run or files
    that reference a deleted image (the foreign key would fail the deletion's commit). Returns how many."""
    with transaction.atomic():
        locked = list(records.select_for_update().order_by("pk").values_list("pk", flat=True))
        Image.objects.filter(pk__in=locked).delete()
    return len(locked)


def forget_moved_names(owner, image_id: str, tags: list[str]) -> None:
    """A name the user gave the image `image_id` no longer names their older images (the engine moved it)."""
    if not tags:
        return
    moved = {access.normalise(tag) for tag in tags}
    # Every named record: a name given without a tag (`hello`) holds no ':' and is the same name as `hello:latest`.
    for other in Image.objects.for_user(owner).exclude(image_id=image_id).exclude(tags=[]):
        kept = [tag for tag in other.tags if access.normalise(tag) not in moved]
        if kept != other.tags:
            Image.objects.filter(pk=other.pk).update(tags=kept)


def record_built_image(build: Build, engine: Engine, image_id: str, analyse: bool = True) -> Image:
    """The record of a build's image; its analysis is asked for once the transaction commits, unless `analyse` is
    False (the build runner asks once the build is finished, so that the analysis is not part of its time)."""
    secrets = json.loads(build.secret_build_args) if build.secret_build_args else {}
    image = record_image(build.owner, engine, image_id, ImageOrigin.BUILT, build=build, secrets=secrets,
                         names=build.tags)
    if analyse:
        transaction.on_commit(partial(request_analysis_by_id, image.pk))
    return image


# -- reading ---------------------------------------------------------------------------------------------------


def images_for(user) -> ImageQuerySet:
    """The user's images with what the list and the API show, in a fixed number of queries: the layers come in
    one prefetch, without their (possibly large) file lists."""
    layers = Layer.objects.defer("files").order_by("index")
    return Image.objects.for_user(user).select_related("analysis").prefetch_related(
        Prefetch("layers", queryset=layers))


CONFIG_KEYS = ("env", "cmd", "entrypoint", "user", "workdir", "exposed_ports", "volumes", "healthcheck")
LIST_FIELDS = ("id", "image_id", "tags", "digests", "size", "created", "architecture", "os", "labels", "config",
               "build_id", "repository_id", "origin", "recorded", "analysis__status", "analysis__error", "files_size",
               "wasted_bytes", "efficiency", "os_release", "packages_read")
LAYER_FIELDS = ("image_id", "index", "diff_id", "created_by", "size", "empty_layer", "created", "build_step_id")


def _timestamp(value: datetime | None) -> str | None:
    # As DRF's DateTimeField writes it (UTC with a Z), so that the list and the detail agree.
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def list_rows(images: ImageQuerySet) -> list[dict]:
    """The API's representation of many images, in two queries and without model instances or serializer
    fields: the shape ImageSerializer gives one image, at a fraction of the cost for a thousand."""
    rows = list(images.values(*LIST_FIELDS))
    layers: dict[int, list[dict]] = {row["id"]: [] for row in rows}
    # The ids themselves, not a subquery: the planner then reads the page's layers by their index.
    for layer in (Layer.objects.filter(image_id__in=list(layers))
                  .order_by("image_id", "index").values_list(*LAYER_FIELDS)):
        image_pk, index, diff_id, created_by, size, empty_layer, created, build_step = layer
        layers[image_pk].append({"index": index, "diff_id": diff_id, "created_by": created_by, "size": size,
                                 "empty_layer": empty_layer, "created": _timestamp(created),
                                 "build_step": build_step})
    for row in rows:
        config = row["config"] or {}
        row["config"] = {key: config.get(key) for key in CONFIG_KEYS}
        row["created"] = _timestamp(row["created"])
        row["recorded"] = _timestamp(row["recorded"])
        row["packages_read"] = _timestamp(row["packages_read"])
        row["build"] = row.pop("build_id")
        row["repository"] = row.pop("repository_id")
        row["analysis_status"] = row.pop("analysis__status") or AnalysisStatus.NONE
        row["analysis_error"] = row.pop("analysis__error") or ""
        row["layers"] = layers[row["id"]]
    return rows


# -- syncing with the build engine -----------------------------------------------------------------------------


@dataclass
class SyncResult:
    recorded: list[Image] = field(default_factory=list)
    forgotten: int = 0


def sync_images(user) -> SyncResult:
    """Record the images on the build engine that are provably the user's own, refresh those already recorded,
    and forget the records whose image the engine no longer has.

    Labels alone prove nothing (anyone can write `LABEL io.console.build=7` in a Dockerfile), so an image is the
    user's when the engine names it in the user's own namespace (only the console makes those names, for that
    user), or when one of the user's builds recorded it as its image."""
    result = SyncResult()
    prefix = access.namespace_of(user) + "/"
    with Engine.for_builds() as engine:
        top_level = imagestore.list_images(engine)
        # Intermediate images (parents of others, untagged) are listed only with all=True: a recorded image may
        # have become one, and is not gone.
        present = {item["id"] for item in imagestore.list_images(engine, every=True)}
        built = {build.image_id: build for build in Build.objects.for_user(user).exclude(image_id="")
                 .filter(image_id__in=[item["id"] for item in top_level]).select_related("repository")}
        known = {image.image_id: image for image in Image.objects.for_user(user)}
        for item in top_level:
            build = built.get(item["id"])
            label = str(item["labels"].get(LABEL_BUILD_ID, ""))
            if build is not None and label != str(build.pk):
                build = None
            named = [tag for tag in item["tags"] if tag.startswith(prefix)]
            if build is None and not named and item["id"] not in known:
                continue
            origin = known[item["id"]].origin if item["id"] in known else ImageOrigin.SYNCED
            names = [tag.removeprefix(prefix) for tag in named]
            try:
                result.recorded.append(record_image(user, engine, item["id"], origin, build=build, names=names))
            except EngineNotFound:
                # Removed between the listing and the inspection: nothing to record.
                present.discard(item["id"])
        gone = [image_id for image_id in known if image_id not in present]
        if gone:
            forget_records(Image.objects.for_user(user).filter(image_id__in=gone))
            result.forgotten = len(gone)
    return result


# -- tag and remove --------------------------------------------------------------------------------------------


class ImageInUse(Conflict):
    """The image cannot be removed; the message says why."""


class ImageGone(Conflict):
    """The engine no longer has the recorded image."""


IMAGE_GONE = "The build engine no longer has this image: sync to forget it."


def tag_image(image: Image, repository: str, tag: str) -> Image:
    """Give the image one more of the user's names (`console-u<id>/<name>` on the engine); refreshes the record.
    Raises OptionError, or ImageGone when the engine no longer has the image."""
    repository, tag = (repository or "").strip(), (tag or "latest").strip()
    if not repository:
        raise OptionError("repository", "Name the repository, like my-app.")
    reference = check_tag(f"{repository}:{tag}")
    engine_repository, engine_tag = access.split_reference(access.engine_name(image.owner, reference))
    with engine_of(image) as engine:
        try:
            engine.tag_image(image.image_id, engine_repository, engine_tag)
        except EngineNotFound as exc:
            raise ImageGone(IMAGE_GONE) from exc
        return record_image(image.owner, engine, image.image_id, image.origin, build=image.build,
                            repository=image.repository, names=[reference])


def remove_image(image: Image) -> None:
    """Take the user's names off the image and forget the record; the image itself leaves the engine when nobody
    else's record keeps it. Raises ImageInUse while a container (running or stopped) uses it or the engine
    refuses (an image built on it needs it)."""
    with engine_of(image) as engine:
        users = imagestore.containers_using(engine, image.image_id)
        if users:
            shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
            raise ImageInUse(f"Containers use this image (remove them first): {shown}.")
        others = Image.objects.filter(image_id=image.image_id).exclude(owner=image.owner_id).exists()
        try:
            details = inspect_image(engine, image.image_id)
            mine = access.user_names(image.owner, details.get("RepoTags") or [])
            for name in sorted(mine):
                remove_tag(engine, name)
            untouched = [tag for tag in details.get("RepoTags") or [] if tag not in mine]
            if not others and not untouched and not SharedImage.objects.filter(
                    image_id=image.image_id).exists():
                imagestore.remove_image(engine, image.image_id)
        except EngineNotFound:
            log.info("Image %s was already gone from the engine", image.image_id[:19])
        except EngineConflict as exc:
            raise ImageInUse(f"The build engine refuses to remove it: {exc}") from exc
    forget_records(Image.objects.filter(pk=image.pk))


# -- the layer tree --------------------------------------------------------------------------------------------


def chain_id(parent: str, diff_id: str) -> str:
    """The OCI ChainID of a layer: its diff_id for the first, else sha256 of `parent-chain diff_id`."""
    if not parent:
        return diff_id
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


def image_tree(user) -> list[dict]:
    """The user's images as a forest of shared layers.

    Each node is a run of layers that no two of the user's images part on: it ends where images part, or where
    an image ends. Each node holds `chain_id` (that of its last layer: the key of the whole chain of diff_ids
    up to there), its `layers` [{diff_id, created_by, size}], their `size`, the `images` whose last layer it is,
    and its `children`. A base image is the root; images that share a parent chain are siblings under the node
    of their deepest shared layer.
    """
    layers = Layer.objects.filter(empty_layer=False).exclude(diff_id="").only(
        "image_id", "index", "diff_id", "created_by", "size").order_by("index")
    images = Image.objects.for_user(user).prefetch_related(Prefetch("layers", queryset=layers)).order_by("id")
    root: dict = {"children": {}}
    for image in images:
        node, chain = root, ""
        for layer in image.layers.all():
            chain = chain_id(chain, layer.diff_id)
            node = node["children"].setdefault(chain, {
                "chain_id": chain, "layer": {"diff_id": layer.diff_id, "created_by": layer.created_by,
                                             "size": layer.size},
                "images": [], "children": {},
            })
        if node is not root:
            node["images"].append({"id": image.pk, "image_id": image.image_id, "tags": image.tags})
    return [_compress(child) for child in root["children"].values()]


def _compress(node: dict) -> dict:
    run = [node["layer"]]
    while not node["images"] and len(node["children"]) == 1:
        node = next(iter(node["children"].values()))
        run.append(node["layer"])
    return {
        "chain_id": node["chain_id"],
        "layers": run,
        "size": sum(layer["size"] for layer in run),
        "images": node["images"],
        "children": [_compress(child) for child in node["children"].values()],
    }


# The engine that holds an image record: builds/access.py decides.
engine_of = access.engine_of
