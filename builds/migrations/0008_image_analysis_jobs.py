"""Image analysis becomes a job of its own (ImageAnalysis): each image's analysis fields become its first run,
and the image points at its latest run."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

ACTIVE = ["queued", "running"]


def fields_to_runs(apps, schema_editor):
    Image = apps.get_model("builds", "Image")
    ImageAnalysis = apps.get_model("builds", "ImageAnalysis")
    now = django.utils.timezone.now()
    for image in Image.objects.exclude(analysis_status="none").iterator():
        changed = image.analysis_changed_at or now
        final = image.analysis_status not in ACTIVE
        run = ImageAnalysis.objects.create(
            image=image, status=image.analysis_status, error=image.analysis_error, queued_at=changed,
            started_at=changed if image.analysis_status != "queued" else None,
            heartbeat_at=changed if image.analysis_status == "running" else None,
            finished_at=changed if final else None)
        Image.objects.filter(pk=image.pk).update(analysis=run)


def runs_to_fields(apps, schema_editor):
    Image = apps.get_model("builds", "Image")
    for image in Image.objects.exclude(analysis=None).select_related("analysis").iterator():
        run = image.analysis
        Image.objects.filter(pk=image.pk).update(
            analysis_status=run.status if run.status != "cancelled" else "failed", analysis_error=run.error,
            analysis_changed_at=run.heartbeat_at or run.started_at or run.queued_at)


class Migration(migrations.Migration):

    dependencies = [
        ("builds", "0007_shared_images"),
    ]

    operations = [
        migrations.CreateModel(
            name="ImageAnalysis",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("status", models.CharField(choices=[("queued", "Queued"), ("running", "Running"),
                                                     ("succeeded", "Succeeded"), ("failed", "Failed"),
                                                     ("cancelled", "Cancelled")],
                                            db_index=True, default="queued", max_length=16)),
                ("task_id", models.CharField(blank=True, help_text="The Celery task that runs this job.",
                                             max_length=64)),
                ("error", models.TextField(blank=True)),
                ("cancel_requested", models.BooleanField(default=False)),
                ("log_line_count", models.PositiveIntegerField(default=0)),
                ("queued_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("heartbeat_at", models.DateTimeField(blank=True, null=True)),
                ("image", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="analyses",
                                            to="builds.image")),
            ],
            options={
                "verbose_name_plural": "image analyses",
                "ordering": ["-queued_at", "-id"],
            },
        ),
        migrations.AddField(
            model_name="image",
            name="analysis",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                    related_name="+", to="builds.imageanalysis"),
        ),
        migrations.AddConstraint(
            model_name="imageanalysis",
            constraint=models.UniqueConstraint(condition=models.Q(("status__in", ACTIVE)), fields=("image",),
                                               name="one_active_analysis_per_image"),
        ),
        migrations.RunPython(fields_to_runs, runs_to_fields),
        migrations.RemoveField(model_name="image", name="analysis_changed_at"),
        migrations.RemoveField(model_name="image", name="analysis_error"),
        migrations.RemoveField(model_name="image", name="analysis_status"),
    ]
