"""A deployment to a swarm: its service settings (Deployment.swarm) and, per target, the service as its rollout was
last seen (DeploymentTarget.service); both null for deployments to plain hosts."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("fleet", "0005_host_swarm"),
    ]

    operations = [
        migrations.AddField(
            model_name="deployment",
            name="swarm",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="deploymenttarget",
            name="service",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
