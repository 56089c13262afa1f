from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from builds.access import normalise, share_image
from builds.models import SharedImage
from console.engine import Engine, EngineError


class Command(BaseCommand):
    help = ("Let every user build FROM an image on the build engine by its plain name (a shared base image), or "
            "stop sharing it with --remove. Users' own names live under console-u<id>/ and cannot shadow it.")

    def add_arguments(self, parser):
        parser.add_argument("reference", help="The image's name on the build engine, like debian:12.")
        parser.add_argument("--remove", action="store_true", help="Stop sharing it.")

    def handle(self, *args, reference: str, remove: bool, **options):
        if remove:
            deleted, _ = SharedImage.objects.filter(reference=normalise(reference)).delete()
            if not deleted:
                raise CommandError(f"{reference} is not shared.")
            self.stdout.write(f"{normalise(reference)} is no longer shared.")
            return
        try:
            with Engine.for_builds() as engine:
                if not engine.image_exists(reference):
                    raise CommandError(f"The build engine has no image {reference}.")
                image_id = engine.client.images.get(reference).id
        except EngineError as exc:
            raise CommandError(str(exc)) from exc
        shared = share_image(reference, image_id)
        self.stdout.write(f"Shared {shared.reference} ({image_id[:19]}): every user may build FROM it.")
