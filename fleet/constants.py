"""Named values of the fleet: host statuses, restart policies, the labels the console puts on containers."""

from __future__ import annotations

from django.db import models


class HostStatus(models.TextChoices):
    UNKNOWN = "unknown", "Not checked yet"
    UP = "up", "Up"
    DOWN = "down", "Down"


class HostScheme(models.TextChoices):
    UNIX = "unix", "unix:// socket"
    TCP = "tcp", "tcp:// (plain or TLS)"
    SSH = "ssh", "ssh://user@host"


class PendingStatus(models.TextChoices):
    """A release a followed tag asked for, waiting for a person's approval, and how that ended."""

    PENDING = "pending", "Waiting for approval"
    APPROVED = "approved", "Approved"
    DECLINED = "declined", "Declined"
    SUPERSEDED = "superseded", "Superseded by a newer push"


class RestartPolicy(models.TextChoices):
    NO = "no", "Never"
    ON_FAILURE = "on-failure", "On failure"
    ALWAYS = "always", "Always"
    UNLESS_STOPPED = "unless-stopped", "Unless stopped"


# Labels on every container a deployment runs: who made it, for which release, from which image.
LABEL_MANAGED = "console.managed"
LABEL_NAME = "console.deployment.name"
# The id of the user the container was deployed for: on a host other users share, each sees and replaces only
# their own containers.
LABEL_OWNER = "console.deployment.owner"
LABEL_DEPLOYMENT = "console.deployment.id"
# The deployment target (one host of one deployment) that created the container: a clean-up removes only what its
# own target made.
LABEL_TARGET = "console.deployment.target"
# Which console made the container (fleet/instance.py): ids are only unique within one console's database.
LABEL_CONSOLE = "console.instance"
LABEL_DIGEST = "console.image.digest"

# Without a HEALTHCHECK, a container that publishes TCP ports serves once each port accepts a connection on the
# host's address, within this long of its start (seconds): one that runs but does not answer where the deployment
# says it does is no success.
PORT_GRACE_SECONDS = 30
# A started container that publishes no TCP port and has no HEALTHCHECK must stay up this long before it replaces
# the old one (seconds): nothing else can tell that it serves.
START_GRACE_SECONDS = 1.5
# Where the image has a HEALTHCHECK, how long it may take to become healthy (seconds).
HEALTH_TIMEOUT_SECONDS = 60
# How long a host check waits for an engine: a periodic check must not hang on a silent host.
CHECK_TIMEOUT_SECONDS = 10
# A swarm's host check reads again the service of at most this many apps' current releases.
MAX_SERVICES_PER_CHECK = 100
# Targets of one deployment run at once, each waiting on its own host.
MAX_PARALLEL_TARGETS = 16
# How many log lines of a container the API and the host page return at most.
MAX_LOG_TAIL = 10000
# A running deployment's task writes a heartbeat this often (seconds) while its targets run...
DEPLOY_HEARTBEAT_SECONDS = 10
# ...and one without a heartbeat for this long lost its worker: the periodic host check fails it (seconds). Longer
# than any single engine call may take (DOCKER_TIMEOUT, 60 s by default) plus the interval.
DEPLOY_HEARTBEAT_TIMEOUT = 180
# A deployment to a swarm reads its service this often while Swarm rolls the tasks over (seconds)...
SWARM_POLL_SECONDS = 0.25
# Each reading has this timeout (seconds): a frozen manager accepts connections and never answers...
SWARM_POLL_TIMEOUT = 10
# ...and a manager that answered no reading for this long ends the deployment, failed (seconds).
SWARM_SILENCE_SECONDS = 30
# The rollout is followed for at most this long, plus the update's own delay and monitor window per replica (seconds).
SWARM_ROLLOUT_TIMEOUT = 120
# A new service (no earlier release to roll back to) fails once this many of its tasks have failed: Swarm would
# restart them for ever.
SWARM_TASK_FAILURES = 3
# A scale asks for 0 to this many replicas (POST /api/v1/deployments/{id}/scale/).
MAX_SCALE_REPLICAS = 100
# A scale's run waits this long for the service's tasks to number what was asked (seconds).
SWARM_SCALE_TIMEOUT = 120
