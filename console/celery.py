"""The console's Celery app: settings come from Django's, under the CELERY_ prefix."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("console")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Periodic work (run `celery -A console beat` next to the workers): the fleet's host check keeps status fresh.
app.conf.beat_schedule = {
    "fleet-check-hosts": {"task": "fleet.check_hosts", "schedule": 60.0},
    "builds-reap-lost": {"task": "builds.reap_lost_builds", "schedule": 30.0},
    # Build nodes whose worker stopped sending heartbeats are marked down; waiting builds are handed out.
    "builds-check-nodes": {"task": "builds.check_nodes", "schedule": 15.0},
    # Pushes and pulls whose worker died (no heartbeat) end failed with that reason.
    "registry-reap-lost": {"task": "registry.reap_lost_transfers", "schedule": 30.0},
    # Image analyses whose worker died end failed, so that they can be asked for again.
    "builds-reap-lost-analyses": {"task": "builds.reap_lost_analyses", "schedule": 300.0},
    # Git imports whose worker died (no heartbeat) end failed, so that the source can be asked for again.
    "builds-reap-lost-imports": {"task": "builds.reap_lost_imports", "schedule": 30.0},
    # Image records follow what happens on the build engines outside the console (builds/services/engine_events.py).
    "builds-follow-engine-events": {"task": "builds.follow_engine_events", "schedule": 15.0},
    # Retention rules of the console's registry (registry/services/retention.py), once a day.
    "registry-apply-retention": {"task": "registry.apply_retention", "schedule": crontab(hour=3, minute=30)},
    "registry-reap-lost-retention-runs": {"task": "registry.reap_lost_retention_runs", "schedule": 60.0},
    # Webhook deliveries whose next attempt is overdue (a lost broker message) are sent again.
    "events-send-due-deliveries": {"task": "events.send_due_deliveries", "schedule": 60.0},
    # Vulnerability data imports whose worker died end failed (their transaction changed nothing).
    "vulnerabilities-reap-lost-imports": {"task": "vulnerabilities.reap_lost_imports", "schedule": 300.0},
    # A garbage collection whose worker died gives the registry back its writes (registry/services/gc.py).
    "registry-reap-lost-garbage-collections": {"task": "registry.reap_lost_garbage_collections", "schedule": 30.0},
}
