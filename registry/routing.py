"""Where registry tasks run: a push reads its image from the engine that holds it, so on a build farm it goes to
the queue of that engine's node (CELERY_TASK_ROUTES lists this router beside builds')."""

from __future__ import annotations

import logging

from builds.services.nodes import queue_for_image
from registry.models import Push
from registry.services.transfers import RUN_PUSH_TASK

log = logging.getLogger(__name__)


def route_task(name, args, kwargs, options, task=None, **kw) -> dict | None:
    """Celery router: a push to the queue of the node holding its image; None leaves it to the other routes."""
    if name != RUN_PUSH_TASK or not args:
        return None
    try:
        push = Push.objects.filter(pk=args[0]).values_list("owner", "image").first()
        queue = push and queue_for_image(push[0], push[1])
    except Exception:  # routing must never stop a send: the default queue is the fallback
        log.exception("Could not route %s", name)
        return None
    return {"queue": queue} if queue else None
