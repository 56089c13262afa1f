from __future__ import annotations

from django import forms

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


class PushForm(forms.Form):
    image = forms.CharField(max_length=255, help_text="An image reference or id on the build engine.")
    registry = forms.ModelChoiceField(queryset=RegistryAccount.objects.none())
    repository = forms.CharField(max_length=255, help_text="For the console's registry: <your username>/<name>.")
    tag = forms.CharField(max_length=128, initial="latest")

    def __init__(self, *args, accounts=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["registry"].queryset = accounts


class PullForm(forms.Form):
    registry = forms.ModelChoiceField(queryset=RegistryAccount.objects.none())
    reference = forms.CharField(max_length=400, help_text="<repository>[:tag] or <repository>@sha256:… in it.")

    def __init__(self, *args, accounts=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["registry"].queryset = accounts
