from __future__ import annotations

from celery import shared_task

from console import jobs
from console.constants import JobStatus
from tests.jobapp.models import SampleJob


@shared_task(bind=True, acks_late=True, name="tests.jobapp.run_sample_job")
def run_sample_job(self, job_id: int) -> None:
    job = SampleJob.objects.get(pk=job_id)
    if not jobs.claim(job):
        return
    jobs.append_log(job, [f"worker {self.request.hostname} got {job.payload}"])
    jobs.finish(job, JobStatus.SUCCEEDED)
