from __future__ import annotations

from django.apps import AppConfig


class VulnerabilitiesConfig(AppConfig):
    name = "builds.vulnerabilities"
    label = "vulnerabilities"
    verbose_name = "Vulnerabilities"

    def ready(self) -> None:
        # builds sends the signal and imports nothing of this app: matching hears of an image's new packages here.
        from builds.signals import packages_recorded
        from builds.vulnerabilities import signals

        packages_recorded.connect(signals.match_recorded_image, dispatch_uid="vulnerabilities-match-image")
