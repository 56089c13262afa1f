from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from console.jobs import logs
from fleet import services
from fleet.constants import RestartPolicy
from fleet.models import Deployment, DeploymentTarget, Host, PendingRelease


class EngineInfoSerializer(serializers.Serializer):
    server_version = serializers.CharField()
    api_version = serializers.CharField()
    os = serializers.CharField()
    kernel = serializers.CharField()
    storage_driver = serializers.CharField()
    backing_filesystem = serializers.CharField()
    cpus = serializers.IntegerField()
    memory = serializers.IntegerField()
    containers_running = serializers.IntegerField()
    containers = serializers.IntegerField()
    images = serializers.IntegerField()


class SwarmNodeSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="Swarm's node id: 25 lowercase letters and digits.")
    hostname = serializers.CharField()
    role = serializers.CharField(help_text="manager or worker.")
    availability = serializers.CharField(help_text="active, pause or drain.")
    state = serializers.CharField(help_text="ready, down, disconnected or unknown.")
    address = serializers.CharField()
    engine_version = serializers.CharField()
    labels = serializers.DictField(child=serializers.CharField())
    leader = serializers.BooleanField(help_text="Whether this manager leads the swarm's managers.")


class SwarmSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The swarm's (cluster's) id.")
    managers = serializers.IntegerField()
    nodes = SwarmNodeSerializer(many=True)


class NodeAvailabilitySerializer(serializers.Serializer):
    availability = serializers.ChoiceField(choices=["active", "pause", "drain"])


class HostSerializer(serializers.ModelSerializer):
    """A host as shown; the TLS material is write-only (`tls` says whether there is some)."""

    address = serializers.CharField(
        required=False, allow_blank=True, help_text="Where published ports answer; blank takes the URL's host."
    )
    labels = serializers.JSONField(required=False, help_text='Like {"env": "prod"}.')
    tls_ca_cert = serializers.CharField(write_only=True, required=False, allow_blank=True, trim_whitespace=False)
    tls_client_cert = serializers.CharField(write_only=True, required=False, allow_blank=True, trim_whitespace=False)
    tls_client_key = serializers.CharField(write_only=True, required=False, allow_blank=True, trim_whitespace=False,
                                           style={"input_type": "password"})
    tls = serializers.BooleanField(source="uses_tls", read_only=True)
    ssh_private_key = serializers.CharField(write_only=True, required=False, allow_blank=True, trim_whitespace=False,
                                            style={"input_type": "password"},
                                            help_text="For ssh:// hosts: the private key the console logs in with.")
    ssh_host_key = serializers.CharField(
        required=False, allow_blank=True,
        help_text="For ssh:// hosts: the server's public host key ('ssh-ed25519 AAAA...'); when blank, the key seen "
                  "at the first connection is recorded and required from then on.")
    ssh_key = serializers.SerializerMethodField(help_text="Whether an ssh private key is stored.")
    ssh_host_key_fingerprint = serializers.SerializerMethodField(help_text="SHA256 fingerprint of ssh_host_key.")
    info = serializers.SerializerMethodField()
    swarm = serializers.SerializerMethodField()

    class Meta:
        model = Host
        fields = [
            "id", "name", "url", "labels", "address", "tls", "tls_ca_cert", "tls_client_cert", "tls_client_key",
            "ssh_key", "ssh_private_key", "ssh_host_key", "ssh_host_key_fingerprint",
            "status", "status_reason", "last_seen", "last_checked", "info", "swarm", "swarm_reason", "created",
        ]
        read_only_fields = ["status", "status_reason", "last_seen", "last_checked", "swarm_reason", "created"]
        extra_kwargs = {"name": {"required": False}, "url": {"required": False}}

    def to_representation(self, instance: Host) -> dict:
        data = super().to_representation(instance)
        data["address"] = instance.address
        return data

    def get_ssh_key(self, instance: Host) -> bool:
        return bool(instance.ssh_private_key)

    def get_ssh_host_key_fingerprint(self, instance: Host) -> str:
        return services.ssh_host_key_fingerprint(instance.ssh_host_key)

    @extend_schema_field(EngineInfoSerializer(allow_null=True))
    def get_info(self, instance: Host) -> dict | None:
        """The engine's facts from the last good check; null before the first one."""
        return instance.info or None

    @extend_schema_field(SwarmSerializer(allow_null=True))
    def get_swarm(self, instance: Host) -> dict | None:
        """Swarm mode as the last good check read it from a manager: null for a plain engine or a worker node's
        (`swarm_reason` says which)."""
        return instance.swarm


class PortSerializer(serializers.Serializer):
    container_port = serializers.IntegerField()
    protocol = serializers.CharField()
    host_ip = serializers.CharField(required=False)
    host_port = serializers.IntegerField(required=False)


class ContainerSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    image = serializers.CharField()
    image_id = serializers.CharField()
    command = serializers.CharField()
    state = serializers.CharField()
    status = serializers.CharField()
    ports = PortSerializer(many=True)
    labels = serializers.DictField(child=serializers.CharField())
    created = serializers.DateTimeField()


class ContainerLogsSerializer(serializers.Serializer):
    container = serializers.CharField()
    tail = serializers.IntegerField()
    logs = serializers.CharField()


class ServiceTaskSerializer(serializers.Serializer):
    id = serializers.CharField()
    node = serializers.CharField(help_text="The node's address (nodes may share a hostname).")
    node_id = serializers.CharField()
    slot = serializers.IntegerField(allow_null=True)
    state = serializers.CharField()
    state_since = serializers.CharField(default="", help_text="When the task entered `state` (Swarm's "
                                                              "Status.Timestamp, RFC 3339).")
    history = serializers.ListField(child=serializers.DictField(child=serializers.CharField()), default=list,
                                    help_text="The states the console saw the task in, oldest first: "
                                              "[{state, since}].")
    desired_state = serializers.CharField()
    error = serializers.CharField()
    message = serializers.CharField()
    image_digest = serializers.CharField()
    updated = serializers.CharField()


class ServiceSerializer(serializers.Serializer):
    """A swarm target's service as its rollout was last seen."""

    id = serializers.CharField()
    replicas = serializers.IntegerField(allow_null=True, help_text="Null for a global service.")
    running = serializers.IntegerField()
    update_state = serializers.CharField(help_text="Swarm's UpdateStatus.State; empty before any update.")
    update_message = serializers.CharField()
    update_started = serializers.CharField()
    read_at = serializers.CharField(default="", help_text="When the console read the service (RFC 3339).")
    tasks = ServiceTaskSerializer(many=True)
    removed = serializers.BooleanField(default=False, help_text="The service was removed (by its removal, or a "
                                                                "first release that never ran).")
    removed_at = serializers.CharField(default="", help_text="When the console removed it (ISO 8601).")


class DeploymentTargetSerializer(serializers.ModelSerializer):
    host = serializers.IntegerField(source="host_id", read_only=True, allow_null=True)
    service = serializers.SerializerMethodField()

    class Meta:
        model = DeploymentTarget
        fields = ["host", "host_name", "status", "step", "container_id", "url", "error", "service", "started_at",
                  "finished_at"]

    @extend_schema_field(ServiceSerializer(allow_null=True))
    def get_service(self, instance: DeploymentTarget) -> dict | None:
        return ServiceSerializer(instance.service).data if instance.service else None


class DeploymentSerializer(serializers.ModelSerializer):
    targets = DeploymentTargetSerializer(many=True, read_only=True)
    registry = serializers.IntegerField(source="registry_account_id", read_only=True, allow_null=True)
    # Null for a deployment that is not a rollback: the schema must say so (schemathesis checks answers against it).
    rollback_of = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    scale_of = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True,
        help_text="The release this deployment scaled (same digest and settings, another replica count).")

    class Meta:
        model = Deployment
        fields = [
            "id", "number", "name", "image", "image_id", "image_digest", "registry", "selector", "ports", "env",
            "restart_policy", "memory_limit", "cpus", "user", "swarm", "status", "error", "rollback_of", "scale_of",
            "targets", "created", "started_at", "finished_at", "log_line_count", "follow_tag", "follow_approval",
            "trigger",
        ]


class DeploymentRequestSerializer(serializers.Serializer):
    """What a deployment asks for; the service checks the values, so the browser form says the same."""

    name = serializers.CharField(max_length=63)
    image = serializers.CharField(max_length=500, help_text="An image reference or id on the build engine, or a "
                                                            "registry reference with `registry`.")
    hosts = serializers.ListField(child=serializers.IntegerField(), required=False)
    selector = serializers.CharField(required=False, allow_blank=True, help_text="Labels, like env=prod.")
    ports = serializers.JSONField(required=False, help_text='Like {"8080/tcp": 8080}.')
    env = serializers.JSONField(required=False, help_text='Like {"WHO": "World"}.')
    restart_policy = serializers.ChoiceField(choices=RestartPolicy.choices, required=False)
    memory_limit = serializers.JSONField(required=False, help_text="Bytes, or a size like 64m.")
    cpus = serializers.FloatField(required=False, allow_null=True)
    user = serializers.CharField(required=False, allow_blank=True)
    registry = serializers.IntegerField(required=False, allow_null=True, help_text="A registry account to pull "
                                                                                   "with.")
    # A swarm manager's host only (fleet/services/deployments.py clean_swarm checks them).
    mode = serializers.ChoiceField(choices=["replicated", "global"], required=False,
                                   help_text="Swarm only: replicated (`replicas` tasks) or global (one per node).")
    replicas = serializers.JSONField(required=False, help_text="Swarm only: how many tasks (1 unless said).")
    placement = serializers.JSONField(required=False, help_text='Swarm only: ["node.labels.tier==web"], or '
                                                                '{"constraints": [...], "max_replicas_per_node": 1}.')
    update = serializers.JSONField(required=False, help_text="Swarm only: {parallelism, delay, order, "
                                                             "failure_action, monitor, max_failure_ratio}; seconds.")
    rollback = serializers.JSONField(required=False, help_text="Swarm only: Swarm's rollback settings, as `update` "
                                                               "(failure_action pause or continue).")
    follow_tag = serializers.CharField(required=False, allow_blank=True, max_length=300,
                                       help_text="repository:tag in the console's registry (under your namespace): "
                                                 "a push that moves it deploys its digest as a new release.")
    follow_approval = serializers.BooleanField(required=False, help_text="With follow_tag: each such release waits "
                                                                         "for a person's approval.")


class PendingReleaseSerializer(serializers.ModelSerializer):
    deployment = serializers.PrimaryKeyRelatedField(read_only=True)
    release = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = PendingRelease
        fields = ["id", "name", "follow_tag", "digest", "event_id", "pushed_by", "status", "deployment",
                  "release", "decided_by", "decided_at", "created"]
        read_only_fields = fields


class ScaleRequestSerializer(serializers.Serializer):
    replicas = serializers.IntegerField(help_text="How many tasks the service runs: 0 to 100.")


# Every job's log answers the same (console/jobs/logs.py); the name stays importable from here.
LogSerializer = logs.LogSerializer
