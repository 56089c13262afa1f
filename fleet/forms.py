"""Browser forms of the fleet; the values are checked by the same service functions the API calls."""

from __future__ import annotations

from django import forms

from fleet.constants import RestartPolicy
from fleet.models import Host
from registry.forms import ImagePickerForm


class HostForm(forms.Form):
    name = forms.CharField(max_length=100)
    url = forms.CharField(max_length=500, label="URL", help_text="unix:///var/run/docker.sock, tcp://10.0.0.5:2376 "
                                                                 "or ssh://deploy@host")
    labels = forms.CharField(required=False, help_text="key=value, separated by commas, like env=prod")
    address = forms.CharField(required=False, help_text="Where published ports answer; blank takes the URL's host")
    tls_ca_cert = forms.CharField(required=False, label="TLS CA certificate", widget=forms.Textarea(attrs={"rows": 3}))
    tls_client_cert = forms.CharField(required=False, label="TLS client certificate",
                                      widget=forms.Textarea(attrs={"rows": 3}))
    tls_client_key = forms.CharField(required=False, label="TLS client key", widget=forms.Textarea(attrs={"rows": 3}),
                                     help_text="Stored encrypted, never shown again")
    ssh_private_key = forms.CharField(required=False, label="ssh private key", widget=forms.Textarea(attrs={"rows": 3}),
                                      help_text="For ssh:// hosts; stored encrypted, never shown again")
    ssh_host_key = forms.CharField(required=False, label="ssh host key",
                                   help_text="For ssh:// hosts: 'ssh-ed25519 AAAA...'; blank records the key seen at "
                                             "the first connection")


class DeployForm(ImagePickerForm):
    """The deploy form: the image picked from the user's own (or typed, ImagePickerForm), the app and its hosts;
    the port and environment rows come as repeated inputs (rows())."""

    name = forms.CharField(max_length=63, help_text="The app's name; a host runs one container of each name")
    hosts = forms.ModelMultipleChoiceField(queryset=Host.objects.none(), required=False,
                                           widget=forms.CheckboxSelectMultiple)
    selector = forms.CharField(required=False, help_text="Or every host with these labels, like env=prod")
    restart_policy = forms.ChoiceField(choices=RestartPolicy.choices, initial=RestartPolicy.UNLESS_STOPPED)
    memory_limit = forms.CharField(required=False, help_text="Like 64m or 1g")
    cpus = forms.CharField(required=False, label="CPUs", help_text="Like 0.5")
    user = forms.CharField(required=False, help_text="Run as this user (name or uid[:gid])")

    def __init__(self, user, *args, **kwargs) -> None:
        super().__init__(user, *args, **kwargs)
        self.fields["hosts"].queryset = Host.objects.for_user(user)


def rows(data, first: str, second: str) -> list[tuple[str, str]]:
    """Pairs of repeated inputs (port rows, environment rows), blank rows left out."""
    return [(a.strip(), b) for a, b in zip(data.getlist(first), data.getlist(second), strict=False) if a.strip()]
