from __future__ import annotations

from django.core.management.base import BaseCommand

from registry.server import write_config


class Command(BaseCommand):
    help = "Write the console registry's config.yml, signing key and certificate under REGISTRY_DIR (idempotent)."

    def handle(self, *args, **options):
        path, changed = write_config()
        self.stdout.write(f"{path} {'written' if changed else 'unchanged'}")
