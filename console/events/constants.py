"""The kinds of event, and the limits of webhook delivery."""

from __future__ import annotations

from django.db import models


class EventKind(models.TextChoices):
    """What happened. Registry events come from the console's own registry (Distribution's notifications); the
    rest from the console's own jobs as they end (whatever their final status: the payload says which)."""

    IMAGE_PUSHED = "image.pushed", "An image was pushed to the console's registry"
    IMAGE_DELETED = "image.deleted", "An image or tag was deleted from the console's registry"
    BUILD_FINISHED = "build.finished", "A build ended"
    PUSH_FINISHED = "push.finished", "A push by the console ended"
    PULL_FINISHED = "pull.finished", "A pull by the console ended"
    DEPLOYMENT_FINISHED = "deployment.finished", "A deployment ended"


# A delivery is a job (console/jobs): `queued` while it waits for its first or next attempt, `running` during one,
# then `succeeded` (a 2xx answer) or `failed` (its last attempt failed too, or the webhook is gone).
MAX_ATTEMPTS = 6

SIGNATURE_HEADER = "X-Console-Signature"
DELIVERY_HEADER = "X-Console-Delivery"
TIMESTAMP_HEADER = "X-Console-Timestamp"
EVENT_HEADER = "X-Console-Event"
