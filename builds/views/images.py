"""Browser pages for images: the list with its search and filters, an image's page, the layer tree, comparing two
images; analyse, sync, tag and remove."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from builds.constants import AnalysisStatus, PackageEcosystem, SbomFormat
from builds.filters import ImageFilterSet
from builds.models import Image
from builds.services import analysis, compare, images, packages
from builds.services.options import OptionError
from console.errors import DomainError, NotFound
from console.listing import paginate


class ImageTagForm(forms.Form):
    repository = forms.CharField(max_length=255, help_text="Like my-app or alice/my-app.")
    tag = forms.CharField(max_length=128, initial="latest")


def _get_image_for_user(request: HttpRequest, pk: int) -> Image:
    found = Image.objects.for_user(request.user).select_related("build", "repository", "analysis")
    return get_object_or_404(found, pk=pk)


@login_required
@require_GET
def image_list(request: HttpRequest) -> HttpResponse:
    search = ImageFilterSet(request.GET)
    found = Image.objects.for_user(request.user).select_related("repository", "analysis")
    listing = paginate(request, search, found, noun="image")
    context = {"listing": listing, "images": listing.page, "search": search.form, "labels": search.labels_given}
    return render(request, "builds/image_list.html", context, status=listing.status)


@login_required
@require_GET
def image_detail(request: HttpRequest, pk: int) -> HttpResponse:
    image = _get_image_for_user(request, pk)
    return _render_detail(request, image, ImageTagForm(initial={"tag": "latest"}))


def _render_detail(request: HttpRequest, image: Image, tag_form: ImageTagForm, status: int = 200) -> HttpResponse:
    layers = list(image.layers.select_related("build_step"))
    analysed = image.analysis_status == AnalysisStatus.SUCCEEDED
    rows = [
        {"layer": layer, "share": share,
         "tree": analysis.file_tree_html(layer.files) if analysed and layer.files else None,
         "file_count": len(layer.files or []), "truncated": len(layer.files or []) > analysis.TREE_ENTRIES_PER_LAYER}
        for layer, share in analysis.layer_bars(layers)
    ]
    context = {"image": image, "rows": rows, "analysed": analysed, "tag_form": tag_form,
               "labels": sorted(image.labels.items()), "tree_limit": analysis.TREE_ENTRIES_PER_LAYER,
               "compare_with": compare.comparison_candidates(image),
               "analysis_current": analysis.analysis_is_current(image), **_packages_context(request, image)}
    return render(request, "builds/image_detail.html", context, status=status)


# The image page lists at most this many packages (the API pages through them all).
PACKAGES_ON_PAGE = 500


def _packages_context(request: HttpRequest, image: Image) -> dict:
    """The Packages section: the OS, counts per ecosystem and the packages (filtered by `ecosystem` and `q`)."""
    if image.packages_read is None:
        return {"packages_read": False}
    ecosystem = request.GET.get("ecosystem", "")
    ecosystem = ecosystem if ecosystem in PackageEcosystem.values else ""
    search = request.GET.get("q", "")[:255]
    found = packages.image_packages(image, ecosystem, search)
    return {"packages_read": True, "os_name": packages.os_name(image), "ecosystems": PackageEcosystem.choices,
            "ecosystem_counts": packages.ecosystem_counts(image), "packages": list(found[:PACKAGES_ON_PAGE]),
            "package_count": found.count(), "package_filter": {"ecosystem": ecosystem, "q": search},
            "packages_on_page": PACKAGES_ON_PAGE, "sbom_formats": SbomFormat.choices}


@login_required
@require_GET
def image_compare(request: HttpRequest) -> HttpResponse:
    base, head = request.GET.get("base", ""), request.GET.get("head", "")
    context = {"base_value": base, "head_value": head, "file_limit": compare.FILE_LIST_LIMIT}
    try:
        context["diff"] = compare.compare_for_user(request.user, base, head)
    except compare.CompareRequestError as exc:
        context["error"] = exc.message
        return render(request, "builds/image_compare.html", context, status=400)
    except NotFound as exc:
        raise Http404(exc.message) from None
    return render(request, "builds/image_compare.html", context)


@login_required
@require_GET
def image_tree(request: HttpRequest) -> HttpResponse:
    return render(request, "builds/image_tree.html", {"nodes": images.image_tree(request.user)})


@login_required
@require_POST
def image_sync(request: HttpRequest) -> HttpResponse:
    try:
        result = images.sync_images(request.user)
    except DomainError as exc:  # the engine's errors included
        messages.error(request, f"Could not sync with the build engine: {exc}")
    else:
        messages.success(request, f"Synced: {len(result.recorded)} images recorded, {result.forgotten} forgotten.")
    return redirect("builds:image-list")


@login_required
@require_POST
def image_analyse(request: HttpRequest, pk: int) -> HttpResponse:
    image = _get_image_for_user(request, pk)
    if analysis.request_analysis(image):
        messages.success(request, "Analysing the image's layers.")
    else:
        messages.info(request, f"The analysis is {image.analysis_status} already.")
    return redirect("builds:image-detail", pk=image.pk)


@login_required
@require_POST
def image_tag(request: HttpRequest, pk: int) -> HttpResponse:
    image = _get_image_for_user(request, pk)
    form = ImageTagForm(request.POST)
    if form.is_valid():
        try:
            images.tag_image(image, form.cleaned_data["repository"], form.cleaned_data["tag"])
        except OptionError as exc:
            form.add_error("repository", str(exc))
        except DomainError as exc:  # ImageGone, or what the engine said
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Tagged {form.cleaned_data['repository']}:{form.cleaned_data['tag']}.")
            return redirect("builds:image-detail", pk=image.pk)
    return _render_detail(request, image, form, status=400)


@login_required
@require_POST
def image_remove(request: HttpRequest, pk: int) -> HttpResponse:
    image = _get_image_for_user(request, pk)
    try:
        images.remove_image(image)
    except DomainError as exc:  # ImageInUse, or what the engine said
        messages.error(request, f"Not removed: {exc}")
        return redirect("builds:image-detail", pk=image.pk)
    messages.success(request, f"Image {image} removed.")
    return redirect("builds:image-list")
