"""The lists' filters, one FilterSet per list for its browser page and its API endpoint: images (labels, a tag, a
repository), builds (repository, status) and source imports (repository)."""

from __future__ import annotations

import re

import django_filters
from django import forms
from django.db.models import TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from builds.models import Build, Image, ImageQuerySet, SourceImport
from console.filters import AnyTextFilter, IdFilter

# A tag as the engine writes it (`name[:tag]`, with an optional registry host); no quotes, so it can be looked
# for inside the JSON text of the tags list.
TAG_FILTER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,299}$")
MAX_LABEL_FILTERS = 10


class ImageFilter(forms.Form):
    """`label=key=value` (repeatable; `label=key` asks only that the key is there), `tag=name[:tag]` and
    `repository=<id>`; the filters combine."""

    label = forms.CharField(required=False, max_length=500,
                            help_text="key=value, or key alone; add more with another label= parameter.")
    tag = forms.CharField(required=False, max_length=300, help_text="name:tag, or a name for any of its tags.")
    repository = forms.IntegerField(required=False, min_value=1, help_text="The id of one of your repositories.")

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
        tag = (cleaned.get("tag") or "").strip()
        if tag and not TAG_FILTER_PATTERN.match(tag):
            self.add_error("tag", f"{tag!r} is not an image name: use name or name:tag.")
        cleaned["tag"] = tag
        return cleaned

    def filter(self, images: ImageQuerySet) -> ImageQuerySet:
        """The images that match every filter given; call after is_valid()."""
        data = self.cleaned_data
        for number, (key, value) in enumerate(data.get("labels") or []):
            if value is None:
                images = images.filter(labels__has_key=key)
            else:
                # A key transform, not `labels__<key>`: label keys hold dots and dashes (io.console.build-id).
                alias = f"_label_{number}"
                # Cast to text, or SQLite compares the value as JSON.
                images = images.annotate(**{alias: Cast(KeyTextTransform(key, "labels"), TextField())}).filter(
                    **{alias: value})
        tag = data.get("tag")
        if tag:
            # Looked for in the JSON text of the list, so that it works on SQLite and PostgreSQL alike: the
            # quotes make `"name:tag"` match one whole element, `"name:` any tag of that name.
            needle = f'"{tag}"' if ":" in tag.rsplit("/", 1)[-1] else f'"{tag}:'
            images = images.annotate(_tags_text=Cast("tags", TextField())).filter(_tags_text__contains=needle)
        if data.get("repository"):
            images = images.filter(repository_id=data["repository"])
        return images

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


class BuildFilter(django_filters.FilterSet):
    """`repository=<id>` (not an id: nothing) and `status=<status>` (exact; no such status: nothing)."""

    repository = IdFilter(field_name="repository_id")
    status = AnyTextFilter(field_name="status")

    class Meta:
        model = Build
        fields: list[str] = []


class SourceImportFilter(django_filters.FilterSet):
    """`repository=<id>` (not an id: nothing)."""

    repository = IdFilter(field_name="repository_id")

    class Meta:
        model = SourceImport
        fields: list[str] = []
