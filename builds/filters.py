"""The lists' filters, one FilterSet per list for its browser page and its API endpoint: images (a search, labels, a
tag, a repository, origin, dates), builds (a search, repository, status, tag, dates) and source imports
(repository). Every list comes out newest first (console.filters.newest_first)."""

from __future__ import annotations

import re

import django_filters
from django import forms
from django.db.models import Q, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from builds.constants import ImageOrigin
from builds.models import Build, Image, ImageQuerySet, SourceImport
from console.constants import JobStatus
from console.filters import (
    MAX_ID,
    MAX_SEARCH_LENGTH,
    AnyTextChoiceField,
    AnyTextField,
    ChoiceTextFilter,
    IdFilter,
    ListFilterSet,
    MomentField,
    PositiveIdFilter,
    SearchFilter,
    moment_filters,
    newest_first,
    text_search,
)

# A tag as the engine writes it (`name[:tag]`, with an optional registry host); no quotes, so it can be looked
# for inside the JSON text of the tags list.
TAG_FILTER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,299}$")
MAX_LABEL_FILTERS = 10
FIXABLE_CHOICES = [("true", "With a fixable vulnerability"), ("false", "Without a fixable vulnerability")]


def clean_tag_filter(form: forms.Form, cleaned: dict) -> None:
    tag = (cleaned.get("tag") or "").strip()
    if tag and not TAG_FILTER_PATTERN.match(tag):
        form.add_error("tag", f"{tag!r} is not an image name: use name or name:tag.")
    cleaned["tag"] = tag


def filter_by_tag(queryset, tag: str):
    """Rows whose JSON `tags` list holds `name:tag`, or `name` with any tag or none (a build's tags are as the user
    gave them). Looked for in the JSON text of the list, so that it works on SQLite and PostgreSQL alike: the
    quotes make `"name:tag"` match one whole element, `"name:` any tag of that name."""
    if not tag:
        return queryset
    queryset = queryset.alias(_tags_text=Cast("tags", TextField()))
    if ":" in tag.rsplit("/", 1)[-1]:
        return queryset.filter(_tags_text__contains=f'"{tag}"')
    return queryset.filter(Q(_tags_text__contains=f'"{tag}:') | Q(_tags_text__contains=f'"{tag}"'))


class ImageFilter(forms.Form):
    """`q=<text>` (part of a tag, a label key or a label value), `label=key=value` (repeatable; `label=key` asks
    only that the key is there), `tag=name[:tag]`, `repository=<id>`, `origin=built|pulled|synced` and
    `created_after`/`created_before` (the image's creation time, a date or an ISO 8601 moment) and
    `fixable_vulnerability=true|false` (whether the vulnerability matching found a record with a fixed version for
    one of its packages); the filters combine."""

    q = AnyTextField(required=False, max_length=MAX_SEARCH_LENGTH, label="Search",
                     help_text="Part of a tag, a label's key or its value.")
    label = forms.CharField(required=False, max_length=500,
                            help_text="key=value, or key alone; add more with another label= parameter.")
    tag = forms.CharField(required=False, max_length=300, help_text="name:tag, or a name for any of its tags.")
    repository = forms.IntegerField(required=False, min_value=1, max_value=MAX_ID,
                                    help_text="The id of one of your repositories.")
    origin = AnyTextChoiceField(required=False, choices=ImageOrigin.choices)
    created_after = MomentField(required=False, label="Created from")
    created_before = MomentField(required=False, label="Created before")
    fixable_vulnerability = AnyTextChoiceField(
        required=False, label="Vulnerabilities", choices=FIXABLE_CHOICES,
        help_text="true: images with a vulnerability that a newer version fixes; false: images with none.")

    def __init__(self, data=None, *args, **kwargs) -> None:
        super().__init__(data, *args, **kwargs)
        getlist = getattr(data, "getlist", None)
        if getlist is not None:
            self.labels_given = [value for value in getlist("label") if value.strip()]
        else:
            value = (data or {}).get("label") or ""
            self.labels_given = [value] if value.strip() else []

    def clean(self) -> dict:
        cleaned = super().clean()
        if len(self.labels_given) > MAX_LABEL_FILTERS:
            self.add_error("label", f"Filter on at most {MAX_LABEL_FILTERS} labels.")
            return cleaned
        labels: list[tuple[str, str | None]] = []
        for given in self.labels_given:
            key, has_value, value = given.partition("=")
            key = key.strip()
            if not key or len(given) > 500:
                self.add_error("label", f"{given!r} is not a label filter: use key=value or key.")
                return cleaned
            labels.append((key, value if has_value else None))
        cleaned["labels"] = labels
        clean_tag_filter(self, cleaned)
        return cleaned

    def filter(self, images: ImageQuerySet) -> ImageQuerySet:
        """The images that match every filter given, newest first; call after is_valid()."""
        data = self.cleaned_data
        images = text_search(images, data.get("q") or "", json_fields=("tags", "labels"))
        for number, (key, value) in enumerate(data.get("labels") or []):
            if value is None:
                images = images.filter(labels__has_key=key)
            else:
                # A key transform, not `labels__<key>`: label keys hold dots and dashes (io.console.build-id).
                alias = f"_label_{number}"
                # Cast to text, or SQLite compares the value as JSON.
                images = images.annotate(**{alias: Cast(KeyTextTransform(key, "labels"), TextField())}).filter(
                    **{alias: value})
        images = filter_by_tag(images, data.get("tag") or "")
        if data.get("repository"):
            images = images.filter(repository_id=data["repository"])
        if data.get("origin"):
            images = images.filter(origin=data["origin"]) if "\x00" not in data["origin"] else images.none()
        if data.get("created_after"):
            images = images.filter(created__gte=data["created_after"])
        if data.get("created_before"):
            images = images.filter(created__lt=data["created_before"])
        fixable = data.get("fixable_vulnerability") or ""
        if fixable in ("true", "false"):
            # The matches are builds.vulnerabilities' rows, reached by their relation's name (builds imports nothing
            # of that app); a fixable one has a fixed version.
            with_fix = Image.objects.filter(vulnerability_matches__fixed_version__gt="").values("pk")
            images = images.filter(pk__in=with_fix) if fixable == "true" else images.exclude(pk__in=with_fix)
        elif fixable:
            images = images.none()
        return newest_first(images)

    def error_detail(self) -> dict[str, list[str]]:
        return {field: [str(message) for message in messages] for field, messages in self.errors.items()}


class ImageFilterSet(django_filters.FilterSet):
    """The image list's FilterSet: its form is ImageFilter above, whose repeatable labels and JSON lookups are more
    than one field each, so the form does the filtering."""

    class Meta:
        model = Image
        form = ImageFilter
        fields: list[str] = []

    @property
    def labels_given(self) -> list[str]:
        return self.form.labels_given

    def filter_queryset(self, queryset: ImageQuerySet) -> ImageQuerySet:
        return self.form.filter(queryset)


class TagField(AnyTextField):
    def clean(self, value):
        value = (super().clean(value) or "").strip()
        if value and "\x00" not in value and not TAG_FILTER_PATTERN.match(value):
            raise forms.ValidationError(f"{value!r} is not an image name: use name or name:tag.", code="invalid")
        return value


class TagFilter(django_filters.CharFilter):
    """`tag=name:tag` (that tag) or `tag=name` (any tag of that name) in a JSON `tags` list; a NUL: nothing."""

    field_class = TagField

    def filter(self, qs, value: str):
        if value and "\x00" in value:
            return qs.none()
        return filter_by_tag(qs, value)


class BuildFilter(ListFilterSet):
    """`q=<text>` (part of a tag asked for, or of the repository's name), `repository=<id>`, `status=<status>`,
    `tag=name[:tag]` and `created_after`/`created_before` (when it was queued); a bad value is a form error, a NUL
    matches nothing."""

    q = SearchFilter(fields=("repository__name",), json_fields=("tags",),
                     help_text="Part of a tag or of the repository's name.")
    status = ChoiceTextFilter(field_name="status", choices=JobStatus.choices)
    repository = PositiveIdFilter(field_name="repository_id", widget=forms.HiddenInput)
    tag = TagFilter(label="Tag", widget=forms.HiddenInput)
    created_after, created_before = moment_filters("queued_at", "Queued")

    class Meta:
        model = Build
        fields: list[str] = []


class SourceImportFilter(django_filters.FilterSet):
    """`repository=<id>` (not an id: nothing)."""

    repository = IdFilter(field_name="repository_id")

    class Meta:
        model = SourceImport
        fields: list[str] = []
