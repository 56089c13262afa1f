"""Browser forms of the fleet; the values are checked by the same service functions the API calls."""

from __future__ import annotations

from django import forms

from fleet.constants import RestartPolicy
from fleet.models import Host
from fleet.services.deployments import ROLLBACK_FAILURE_ACTIONS, UPDATE_FAILURE_ACTIONS, UPDATE_ORDERS
from registry.forms import ImagePickerForm
from registry.models import RegistryAccount


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


class HostCheckboxes(forms.CheckboxSelectMultiple):
    """The hosts to deploy to; a swarm manager's box says so (`data-swarm`), for the script that opens the
    form's Swarm settings (static/js/fleet-deploy.js)."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        host = getattr(value, "instance", None)
        if host is not None and host.swarm is not None:
            option["attrs"]["data-swarm"] = "manager"
        return option


class HostChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Host) -> str:
        return f"{obj.name} (swarm manager)" if obj.swarm is not None else obj.name


def _select(choices: tuple[str, ...], blank: str) -> forms.Select:
    return forms.Select(choices=[("", blank), *((choice, choice) for choice in choices)])


def _seconds(label: str, help_text: str = "") -> forms.CharField:
    # Text, not a number field: the service reads seconds (5, 0.5, "5s") and says what is wrong with the rest.
    return forms.CharField(required=False, label=label, help_text=help_text,
                           widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "seconds"}))


def _update_fields(prefix: str, actions: tuple[str, ...], defaults: str) -> dict[str, forms.Field]:
    """Swarm's update (or rollback) settings as inputs named `<prefix>_<setting>`; a blank one is Swarm's
    default. Choices are plain text for the service to check (clean_update_settings), as the API's are."""
    return {
        f"{prefix}_parallelism": forms.IntegerField(required=False, label="Parallelism",
                                                    help_text="Tasks at once; 0 is all at once. Swarm: 1"),
        f"{prefix}_delay": _seconds("Delay", "Between batches. Swarm: 0"),
        f"{prefix}_order": forms.CharField(required=False, label="Order",
                                           widget=_select(UPDATE_ORDERS, "Swarm's default (stop-first)")),
        f"{prefix}_failure_action": forms.CharField(required=False, label="On failure",
                                                    widget=_select(actions, f"Swarm's default ({defaults})")),
        f"{prefix}_monitor": _seconds("Monitor", "How long each batch is watched for failure. Swarm: 5"),
        f"{prefix}_max_failure_ratio": forms.FloatField(required=False, label="Max failure ratio",
                                                        help_text="Failed tasks tolerated, 0 to 1. Swarm: 0"),
    }


# The form's swarm inputs, in the order the Swarm fieldset shows them (the rest are the deployment's own).
SWARM_SERVICE_FIELDS = ("mode", "replicas", "placement_constraints", "placement_max_replicas_per_node")
SWARM_UPDATE_FIELDS = tuple(_update_fields("update", UPDATE_FAILURE_ACTIONS, "pause"))
SWARM_ROLLBACK_FIELDS = tuple(_update_fields("rollback", ROLLBACK_FAILURE_ACTIONS, "pause"))
SWARM_INPUTS = SWARM_SERVICE_FIELDS + SWARM_UPDATE_FIELDS + SWARM_ROLLBACK_FIELDS


class DeployForm(ImagePickerForm):
    """The deploy form: the image picked from the user's own (or typed, ImagePickerForm), the app and its hosts;
    the port and environment rows come as repeated inputs (rows()). A swarm manager's deployment takes the
    Swarm fieldset's settings too (swarm_settings()); the service decides what they mean and refuses."""

    name = forms.CharField(max_length=63, help_text="The app's name; a host runs one container of each name")
    hosts = HostChoiceField(queryset=Host.objects.none(), required=False, widget=HostCheckboxes)
    registry = forms.ModelChoiceField(
        queryset=RegistryAccount.objects.none(), required=False, label="Pull from registry account",
        empty_label="— none: the console sends the image —",
        help_text="Each host (each swarm node) pulls the image reference typed above with this account's "
                  "credentials. A swarm always pulls from a registry.")
    selector = forms.CharField(required=False, help_text="Or every host with these labels, like env=prod")
    restart_policy = forms.ChoiceField(choices=RestartPolicy.choices, initial=RestartPolicy.UNLESS_STOPPED)
    memory_limit = forms.CharField(required=False, help_text="Like 64m or 1g")
    cpus = forms.CharField(required=False, label="CPUs", help_text="Like 0.5")
    user = forms.CharField(required=False, help_text="Run as this user (name or uid[:gid])")
    follow_tag = forms.CharField(required=False, max_length=300, label="Follow a tag",
                                 help_text="A repository:tag of the console's registry, like alice/app:latest: "
                                           "each push that moves it deploys the new image as a new release")
    follow_approval = forms.BooleanField(required=False, label="Ask me before deploying a pushed tag",
                                         help_text="The release waits on this page for Approve or Decline")

    # Swarm only (the fieldset says so); each blank one is left to Swarm's default.
    mode = forms.CharField(required=False, label="Mode", initial="replicated",
                           widget=forms.RadioSelect(choices=[
                               ("replicated", "Replicated: the number of replicas below"),
                               ("global", "Global: one task on every node")]))
    replicas = forms.IntegerField(required=False, help_text="Tasks of a replicated service; 1 unless said")
    placement_constraints = forms.CharField(
        required=False, label="Placement constraints", widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One a line, from the nodes' labels and roles: node.labels.tier==web, node.role!=manager")
    placement_max_replicas_per_node = forms.IntegerField(
        required=False, label="Max replicas per node",
        help_text="1 lets each node's published port serve one task (host-mode ports)")

    def __init__(self, user, *args, **kwargs) -> None:
        super().__init__(user, *args, **kwargs)
        self.fields["hosts"].queryset = Host.objects.for_user(user)
        self.fields["registry"].queryset = RegistryAccount.objects.for_user(user)
        self.fields.update(_update_fields("update", UPDATE_FAILURE_ACTIONS, "pause"))
        self.fields.update(_update_fields("rollback", ROLLBACK_FAILURE_ACTIONS, "pause"))

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("registry") is not None and cleaned.get("picked") is not None:
            self.add_error("picked", "A pull from a registry takes the image's reference: type it below (pushed "
                                     "to that registry) instead of picking an image the console holds.")
        return cleaned

    def general_fields(self) -> list:
        return [field for field in self.visible_fields() if field.name not in SWARM_INPUTS]

    def swarm_groups(self) -> list[tuple[str, str, list]]:
        """(id, legend, fields) of the Swarm fieldset's parts."""
        return [
            ("swarm-service", "Service", [self[name] for name in SWARM_SERVICE_FIELDS]),
            ("swarm-update", "Rolling update", [self[name] for name in SWARM_UPDATE_FIELDS]),
            ("swarm-rollback", "Rollback (when an update fails and Swarm rolls it back)",
             [self[name] for name in SWARM_ROLLBACK_FIELDS]),
        ]

    def swarm_asked(self) -> bool:
        """Whether the form holds any swarm setting (sent, or started from a swarm release): the fieldset opens."""
        return any(self.swarm_settings_of(self.data if self.is_bound else self.initial_values()).values())

    def initial_values(self) -> dict:
        return {name: self.initial.get(name, self.fields[name].initial) for name in SWARM_INPUTS}

    @staticmethod
    def swarm_settings_of(values) -> dict:
        """The swarm settings as create_deployment takes them, from the form's values: only those given (a blank
        input is Swarm's default, "replicated" is the default mode), so a plain host's deployment gets none."""
        def given(name: str):
            value = values.get(name)
            return None if value is None or (isinstance(value, str) and not value.strip()) else value

        settings: dict = {}
        if (mode := given("mode")) is not None and mode != "replicated":
            settings["mode"] = mode
        if (replicas := given("replicas")) is not None:
            settings["replicas"] = replicas
        placement: dict = {}
        if (constraints := given("placement_constraints")) is not None:
            placement["constraints"] = [line.strip() for line in str(constraints).splitlines() if line.strip()]
        if (per_node := given("placement_max_replicas_per_node")) is not None:
            placement["max_replicas_per_node"] = per_node
        if placement:
            settings["placement"] = placement
        for prefix, names in (("update", SWARM_UPDATE_FIELDS), ("rollback", SWARM_ROLLBACK_FIELDS)):
            part = {name.removeprefix(f"{prefix}_"): value for name in names if (value := given(name)) is not None}
            if part:
                settings[prefix] = part
        return settings

    def swarm_settings(self) -> dict:
        return self.swarm_settings_of(self.cleaned_data)


def rows(data, first: str, second: str) -> list[tuple[str, str]]:
    """Pairs of repeated inputs (port rows, environment rows), blank rows left out."""
    return [(a.strip(), b) for a, b in zip(data.getlist(first), data.getlist(second), strict=False) if a.strip()]


def swarm_initial(swarm: dict | None) -> dict:
    """A deployment's swarm settings (Deployment.swarm) as the deploy form's initial values, for its Redeploy."""
    if not swarm:
        return {}
    initial: dict = {"mode": swarm.get("mode") or "replicated", "replicas": swarm.get("replicas")}
    placement = swarm.get("placement") or {}
    initial["placement_constraints"] = "\n".join(placement.get("constraints") or [])
    initial["placement_max_replicas_per_node"] = placement.get("max_replicas_per_node")
    for prefix in ("update", "rollback"):
        for key, value in (swarm.get(prefix) or {}).items():
            initial[f"{prefix}_{key}"] = f"{value:g}" if key in ("delay", "monitor") else value
    return initial
