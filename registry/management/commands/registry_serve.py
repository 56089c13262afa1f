from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from registry import maintenance
from registry.server import CONFIG_FILE, READ_ONLY_CONFIG_FILE, write_config


class Command(BaseCommand):
    help = ("Serve the console's registry (docker-registry serve) in the foreground, read-only while a garbage "
            "collection holds its lease (registry/maintenance.py); writes its config first.")

    def handle(self, *args, **options):
        write_config()
        directory = Path(settings.REGISTRY_DIR)
        supervisor = maintenance.Supervisor(directory, settings.REGISTRY_ADDRESS, {
            maintenance.READ_WRITE: directory / CONFIG_FILE,
            maintenance.READ_ONLY: directory / READ_ONLY_CONFIG_FILE,
        }, announce=lambda line: self.stderr.write(line))
        sys.exit(supervisor.serve())
