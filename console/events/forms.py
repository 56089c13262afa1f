from __future__ import annotations

from django import forms

from console.events.constants import EventKind


class WebhookForm(forms.Form):
    url = forms.CharField(label="URL", max_length=2000, widget=forms.URLInput(attrs={"placeholder": "https://"}))
    events = forms.MultipleChoiceField(choices=EventKind.choices, widget=forms.CheckboxSelectMultiple,
                                       initial=[EventKind.IMAGE_PUSHED])
    repository = forms.CharField(max_length=255, required=False,
                                 help_text="Only events about this repository, such as <code>alice/app</code> "
                                           "(blank: all of yours).")
    secret = forms.CharField(max_length=256, strip=False, widget=forms.PasswordInput(render_value=False),
                             help_text="Signs every delivery: <code>X-Console-Signature: sha256=&lt;HMAC-SHA256 of "
                                       "the body&gt;</code>. Stored encrypted and never shown again.")
