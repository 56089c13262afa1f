"""The per-layer file analysis of an image: asked for once (a run, ImageAnalysis, is a job: the worker's side is
builds/runner/analysis.py), stored on the image (sizes, wasted bytes, efficiency) and its layers (each one's
files: which instruction made which layer was settled when the image was recorded, and is only checked here),
and read by the pages."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from builds.constants import AnalysisStatus
from builds.layerfiles import DIR, LayerAnalysis
from builds.models import Image, ImageAnalysis, Layer
from console import jobs
from console.constants import JobStatus
from console.errors import Conflict

log = logging.getLogger(__name__)

# The browser's file tree shows at most this many entries per layer (the API pages by folder instead).
TREE_ENTRIES_PER_LAYER = 1500


class NotAnalysed(Conflict):
    """The image's files are not known yet; the message says where the analysis stands."""


class BadLayerPath(ValueError):
    """A folder filter that is not a plain path inside the image."""


# -- asking ---------------------------------------------------------------------------------------------------

# The task that runs an analysis job (builds/tasks.py -> builds/runner/analysis.py), sent by name.
RUN_ANALYSIS_TASK = "builds.run_image_analysis"
# Its older name, which took the image's record id: still answered for tasks queued before analyses were jobs.
ANALYSE_IMAGE_TASK = "builds.analyse_image"
NOT_QUEUED = "The analysis could not be queued: try again."
WORKER_LOST = "The analysis did not finish: its worker was lost. Ask for it again."


def analysis_is_current(image: Image) -> bool:
    """The analysis succeeded and read the packages too. One that succeeded before the analysis read packages
    (`packages_read` unset) may be asked for again: it is run once more, to record them."""
    return image.analysis_status == AnalysisStatus.SUCCEEDED and image.packages_read is not None


def request_analysis(image: Image) -> bool:
    """Queue a run of the analysis unless one is queued, running or done (`analysis_is_current`); True when this
    call queued it.

    The image's row is locked while it is decided, and at most one run per image is active (a unique
    constraint), so two requests at once queue one run. A failed analysis may be asked for again: a new run."""
    with transaction.atomic():
        locked = Image.objects.select_for_update(of=("self",)).select_related("analysis").filter(pk=image.pk).first()
        if locked is None:  # forgotten meanwhile (builds/services/images.py forget_records)
            return False
        queued = (locked.analysis_status not in (AnalysisStatus.QUEUED, AnalysisStatus.RUNNING)
                  and not analysis_is_current(locked))
        if queued:
            try:
                with transaction.atomic():
                    run = ImageAnalysis.objects.create(image=locked)
            except IntegrityError:  # another request queued one meanwhile (SQLite does not lock the row)
                queued = False
            else:
                Image.objects.filter(pk=image.pk).update(analysis=run)
                jobs.enqueue_on_commit(run, RUN_ANALYSIS_TASK, failed_error=NOT_QUEUED)
    image.refresh_from_db(fields=["analysis"])
    return queued


def request_analysis_by_id(image_pk: int) -> None:
    """What the build runner's commit hook calls: the image may be gone by then."""
    image = Image.objects.filter(pk=image_pk).first()
    if image is not None:
        request_analysis(image)


def queued_analysis_of(image_pk: int) -> ImageAnalysis | None:
    """The image's queued run, for a task sent by the image's id (ANALYSE_IMAGE_TASK); None when it has none."""
    return ImageAnalysis.objects.filter(image=image_pk, status=JobStatus.QUEUED).first()


def reap_lost_analyses(older_than: timedelta | None = None) -> list[int]:
    """Fail the analyses whose worker is gone, so that they can be asked for again; returns their images' ids.

    A running analysis sends heartbeats (builds/runner/analysis.py); a queued one whose task no worker took for
    IMAGE_ANALYSIS_TIMEOUT (the broker lost it) is failed too."""
    if older_than is None:
        older_than = timedelta(seconds=settings.IMAGE_ANALYSIS_TIMEOUT)
    reaped = jobs.reap_lost(ImageAnalysis, older_than, WORKER_LOST)
    never_taken = ImageAnalysis.objects.filter(status=JobStatus.QUEUED, queued_at__lt=timezone.now() - older_than)
    reaped += [run for run in never_taken if jobs.finish(run, JobStatus.FAILED, WORKER_LOST)]
    return [run.image_id for run in reaped]


# -- storing ----------------------------------------------------------------------------------------------------


class LayerMappingMismatch(ValueError):
    """The image's record says other layers than its saved archive: the record was not made by record_image as
    it is now (a record from before layers were exact), or the engine's image changed under its id."""


def store_analysis(image: Image, analysed: list[LayerAnalysis], total_size: int, wasted_bytes: int,
                   efficiency: float, empty_layers: list[bool] | None = None) -> None:
    """Give each of the image's layers its files, and the image its figures. Which entry made which layer was
    settled when the image was recorded (builds/services/images.py `layer_makers`); the analysis adds files and
    never moves a layer. When the archive disagrees with the record (its diff_ids, or its config's `empty_layer`
    flags, `empty_layers`) nothing is stored: raises LayerMappingMismatch."""
    rows = list(image.layers.order_by("index"))
    disagreement = mapping_disagreement(rows, analysed, empty_layers)
    if disagreement:
        log.error("Image %s (record %s): %s", image.image_id[:19], image.pk, disagreement)
        raise LayerMappingMismatch(f"The image's recorded layers do not match the image itself ({disagreement}): "
                                   "sync the images to record it again, then ask for its analysis.")
    layers = iter(analysed)
    for row in rows:
        row.files = [] if row.empty_layer else next(layers).changes
    with transaction.atomic():
        # The image's row first, then its layers: the order record_image takes them in (its update_or_create
        # locks the image, then it replaces the layers), so that a new tag given meanwhile cannot deadlock.
        lock_image(image)
        if set(image.layers.values_list("pk", flat=True)) != {row.pk for row in rows}:
            raise LayerMappingMismatch("The image was recorded again while it was analysed: ask for its "
                                       "analysis again.")
        Layer.objects.bulk_update(rows, ["files"], batch_size=200)
        Image.objects.filter(pk=image.pk).update(files_size=total_size, wasted_bytes=wasted_bytes,
                                                 efficiency=efficiency)


def lock_image(image: Image) -> None:
    """Lock the image's row for the transaction, before any of its layers or packages: every writer of an image's
    layers (record_image, store_analysis, record_packages) takes the image first, so none waits on another in
    the opposite order."""
    list(Image.objects.select_for_update().filter(pk=image.pk).values_list("pk", flat=True))


def mapping_disagreement(rows: list[Layer], analysed: list[LayerAnalysis], empty_layers: list[bool] | None) -> str:
    """Where the recorded layers (`rows`, in order) and the saved image differ; "" when they agree.

    The rows' layers must be the archive's, in order, by diff_id; and where the config's history accounts for
    the layers, its `empty_layer` flags must be the rows' (a record whose history did not account for them has
    one row per layer and no instruction)."""
    recorded = [row.diff_id for row in rows if not row.empty_layer]
    saved = [layer.diff_id for layer in analysed]
    if len(recorded) != len(saved):
        return f"{len(recorded)} layers recorded, {len(saved)} in the archive"
    for index, (mine, theirs) in enumerate(zip(recorded, saved, strict=True)):
        if mine != theirs:
            return f"layer {index} is {mine[:19]} in the record and {theirs[:19]} in the archive"
    if empty_layers is None or empty_layers.count(False) != len(saved):
        return ""
    flags = [row.empty_layer for row in rows]
    if len(flags) != len(empty_layers):
        return f"{len(flags)} history entries recorded, {len(empty_layers)} in the config"
    for index, (recorded_empty, config_empty) in enumerate(zip(flags, empty_layers, strict=True)):
        if recorded_empty != config_empty:
            return (f"history entry {index} is recorded {'without' if recorded_empty else 'with'} a layer, and the "
                    f"config gives it {'none' if config_empty else 'one'}")
    return ""


# -- reading ----------------------------------------------------------------------------------------------------


def clean_folder(path: str) -> str:
    """A folder filter as stored paths spell it: no leading or trailing slash, '' for the root."""
    path = (path or "").strip()
    if len(path) > 4096 or "\x00" in path:
        raise BadLayerPath("The path is too long or holds a NUL.")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise BadLayerPath("The path must not hold '..'.")
    return "/".join(parts)


def layer_files(image: Image, layer: Layer, folder: str = "") -> list[dict]:
    """The files the layer added, modified or removed under `folder` (all of them for ''). Raises NotAnalysed."""
    if image.analysis_status != AnalysisStatus.SUCCEEDED or layer.files is None:
        error = f": {image.analysis_error}" if image.analysis_error else ""
        raise NotAnalysed(f"The image's files are not analysed yet (analysis {image.analysis_status}{error}).")
    if not folder:
        return layer.files
    prefix = folder + "/"
    return [change for change in layer.files if change["path"].startswith(prefix)]


def file_tree_html(changes: list[dict], limit: int = TREE_ENTRIES_PER_LAYER) -> SafeString:
    """A layer's changes as nested lists, folders collapsible (<details>), each entry with its change marker.

    Rendered here rather than by recursive template includes: a layer holds thousands of entries."""
    root: dict = {"children": {}}
    for change in changes[:limit]:
        node = root
        parts = change["path"].split("/")
        for depth, part in enumerate(parts):
            node = node["children"].setdefault(part, {"name": part, "path": "/".join(parts[: depth + 1]),
                                                      "change": None, "children": {}})
        node["change"] = change
    return _tree_list(root)


def _tree_list(node: dict) -> SafeString:
    items = [_tree_item(child) for child in sorted(node["children"].values(), key=lambda n: n["name"])]
    return format_html('<ul class="filetree">{}</ul>', mark_safe("".join(items)))  # noqa: S308 (escaped)


def _tree_item(node: dict) -> str:
    change = node["change"]
    marker = format_html('<span class="badge change-{0}" title="{0}">{1}</span> ', change["change"],
                         {"added": "+", "modified": "~", "removed": "−"}[change["change"]]) if change else ""
    size = format_html(' <span class="muted">{} B</span>', change["size"]) if change and change["size"] else ""
    is_folder = bool(node["children"]) or (change is not None and change["type"] == DIR)
    if not is_folder:
        return format_html("<li>{}<code>{}</code>{}</li>", marker, node["name"], size)
    return format_html("<li><details><summary>{}<code>{}/</code>{}</summary>{}</details></li>",
                       marker, node["name"], size, _tree_list(node) if node["children"] else "")


def layer_bars(layers: list[Layer]) -> list[tuple[Layer, int]]:
    """Each layer with its size as a share of the largest layer's, in percent (the page's <meter> uses it)."""
    largest = max((layer.size for layer in layers), default=0) or 1
    return [(layer, round(100 * layer.size / largest)) for layer in layers]



def wasted_files(layers: list[Layer]) -> list[dict]:
    """The files that make an image's wasted bytes, most bytes first: each version of a file that a later layer
    overwrites or removes, read from the layers' stored changes (loaded already: no query per layer).

    Each row holds `path`, `bytes` (wasted), `added_in` (the index of the layer that wrote the hidden version)
    and `hidden_in` (that of the layer that overwrote or removed it). Bytes of a file a layer's tar holds twice
    are counted in the image's wasted bytes but are not in the stored changes, so the rows may add up to less."""
    present: dict[str, tuple[int, int]] = {}
    found: list[dict] = []
    for layer in sorted(layers, key=lambda row: row.index):
        for change in layer.files or []:
            path, size = change["path"], int(change.get("size") or 0)
            previous = present.pop(path, None)
            if previous is not None and previous[0]:
                found.append({"path": path, "bytes": previous[0], "added_in": previous[1], "hidden_in": layer.index})
            if change["change"] != "removed":
                present[path] = (size, layer.index)
    found.sort(key=lambda row: (-row["bytes"], row["path"]))
    return found


def efficiency_text(efficiency: float | None, wasted_bytes: int | None) -> str:
    """The efficiency in percent with enough digits never to read 100 % while bytes are wasted (nor 0 % while
    some are not): one decimal, more while rounding would hide the waste, `>99.9999` past that."""
    if efficiency is None:
        return ""
    percent = 100 * efficiency
    if not wasted_bytes:
        return "100"
    for digits in range(1, 5):
        shown = f"{percent:.{digits}f}"
        if float(shown) < 100 and (float(shown) > 0 or percent == 0):
            return shown
    return ">99.9999" if percent > 50 else "<0.0001"
