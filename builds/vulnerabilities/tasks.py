from __future__ import annotations

from celery import shared_task

from builds.vulnerabilities import runner, services


@shared_task(bind=True, acks_late=True, name="vulnerabilities.run_import")
def run_import(self, import_id: int) -> None:
    """Import OSV data and match every analysed image again (the VulnerabilityImport's id)."""
    runner.run_import(import_id)


@shared_task(name="vulnerabilities.reap_lost_imports", acks_late=True)
def reap_lost_imports() -> list[int]:
    """Fail imports whose worker died (periodic); their transaction never committed."""
    return services.reap_lost_imports()
