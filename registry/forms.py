from __future__ import annotations

from django import forms
from django.utils import timezone
from django.utils.html import escape

from builds.models import Image
from builds.services.images import images_for
from registry.constants import USER_KINDS, RegistryKind
from registry.models import RegistryAccount


class RegistryAccountForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=[(kind.value, kind.label) for kind in USER_KINDS], initial=RegistryKind.DOCKERHUB)
    url = forms.CharField(
        max_length=255, required=False, label="URL",
        help_text="Only for a generic registry (https://registry.example.com), or a regional gcr.io host.",
    )
    username = forms.CharField(max_length=255, required=False, help_text="Google: filled in as _json_key.")
    secret = forms.CharField(
        required=False, label="Password or token", strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    ca_certificate = forms.CharField(
        required=False, label="CA certificate (PEM)", widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Only for a generic registry whose TLS certificate is signed by a private CA.",
    )

    def __init__(self, *args, editing: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["secret"].help_text = "Stored and never shown; leave empty to keep it."


def own_images(user):
    """The user's image records for a picker, newest first, without the layers images_for prefetches."""
    return images_for(user).select_related(None).prefetch_related(None).only(
        "pk", "owner_id", "image_id", "tags", "created", "recorded")


def image_choice_label(image: Image) -> str:
    """An image as a picker lists it: its tags, short id and creation time (`hello:1 · 3f2a9c1b7d4e · …`)."""
    created = timezone.localtime(image.created).strftime("%Y-%m-%d %H:%M") if image.created else "no date"
    tags = ", ".join(image.tags) or "untagged"
    return f"{tags} · {image.image_id.removeprefix('sha256:')[:12]} · {created}"


def image_app_name(image: Image) -> str:
    """The name an image goes by without its registry, namespace and tag (`alice/hello:1` -> `hello`), for the
    forms that start from it (the push's repository, the deployment's app); its repository's name when untagged."""
    if image.tags:
        return image.tags[0].rsplit(":", 1)[0].rsplit("/", 1)[-1].lower()
    return image.repository.name.lower() if image.repository_id else ""


class ImageChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Image) -> str:
        return image_choice_label(obj)


class ImagePickerForm(forms.Form):
    """A form that takes an image: picked from the user's own images (the common path, static/js/picker.js
    makes the list searchable) or typed (a shared base image, a reference); exactly one. `image` holds what
    the service is given: the picked record's number (builds/access.py grants those) or the typed text."""

    picked = ImageChoiceField(queryset=Image.objects.none(), required=False, label="Your image",
                              empty_label="— type a reference below instead —",
                              widget=forms.Select(attrs={"data-picker": "image"}))
    image = forms.CharField(max_length=500, required=False, label="Or an image reference",
                            help_text="A shared base image or a name:tag or id you may use.")

    def __init__(self, user, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["picked"].queryset = own_images(user)

    def clean(self) -> dict:
        cleaned = super().clean()
        picked, typed = cleaned.get("picked"), (cleaned.get("image") or "").strip()
        if picked is not None and typed:
            self.add_error("image", "Pick one of your images or type a reference, not both.")
        elif picked is not None:
            cleaned["image"] = str(picked.pk)
        elif not typed and not self.has_error("image"):
            self.add_error("picked", "Pick one of your images, or type a reference below.")
        return cleaned


class PushForm(ImagePickerForm):
    registry = forms.ModelChoiceField(queryset=RegistryAccount.objects.none())
    # help_text is rendered as HTML (templates/form_fields.html): the placeholder is escaped to be seen.
    repository = forms.CharField(max_length=255,
                                 help_text=escape("For the console's registry: <your username>/<name>."))
    tag = forms.CharField(max_length=128, initial="latest")

    def __init__(self, user, *args, accounts=None, **kwargs) -> None:
        super().__init__(user, *args, **kwargs)
        self.fields["registry"].queryset = accounts


class PullForm(forms.Form):
    registry = forms.ModelChoiceField(queryset=RegistryAccount.objects.none())
    reference = forms.CharField(max_length=400, help_text="<repository>[:tag] or <repository>@sha256:… in it.")

    def __init__(self, *args, accounts=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["registry"].queryset = accounts


def _patterns(text: str) -> list[str]:
    """Patterns typed one per line or separated by commas."""
    return [item.strip() for line in (text or "").splitlines() for item in line.split(",") if item.strip()]


class RetentionForm(forms.Form):
    """A repository's retention rule on its tags page; the service checks the patterns (RE2)."""

    keep_last = forms.IntegerField(required=False, min_value=0, label="Keep the newest",
                                   help_text="Tags, by the image's date.")
    keep_younger_than = forms.IntegerField(required=False, min_value=0, label="Keep younger than (days)")
    keep_matching = forms.CharField(required=False, label="Keep tags matching", widget=forms.TextInput(),
                                    help_text="Globs (v1.*) or re:<expression>, separated by commas.")
    protect = forms.CharField(required=False, label="Never delete", initial="latest",
                              help_text="Patterns of tags no rule deletes, such as latest, prod*.")

    @classmethod
    def for_rule(cls, rule, data=None) -> RetentionForm:
        initial = {}
        if rule is not None:
            initial = {"keep_last": rule.keep_last, "keep_younger_than": rule.keep_younger_than,
                       "keep_matching": ", ".join(rule.keep_matching), "protect": ", ".join(rule.protect)}
        return cls(data, initial=initial)

    def rule_data(self) -> dict:
        data = dict(self.cleaned_data)
        data["keep_matching"] = _patterns(data.get("keep_matching", ""))
        data["protect"] = _patterns(data.get("protect", ""))
        return data
