from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from builds.access import share_image
from console.baseimage import BaseImageError, import_base_image
from console.engine import Engine, EngineError


class Command(BaseCommand):
    help = "Make the offline busybox base image on the build engine (from Debian's busybox-static)."

    def add_arguments(self, parser):
        parser.add_argument("--repository", default=settings.CONSOLE_BASE_IMAGE)
        parser.add_argument("--force", action="store_true", help="Import again even when the image exists.")

    def handle(self, *args, repository: str, force: bool, **options):
        try:
            with Engine.for_builds() as engine:
                image_id, tags, made = import_base_image(engine, repository, force=force)
        except (BaseImageError, EngineError) as exc:
            raise CommandError(str(exc)) from exc
        # Every user may build FROM the base image by its plain name (builds/access.py).
        for tag in tags:
            share_image(tag, image_id)
        verb = "Imported" if made else "Already present:"
        self.stdout.write(f"{verb} {' '.join(tags)} ({image_id[:19]})")
