"""Swarm mode on a host: what the host check reads from a manager's engine (null for a plain engine or a worker's),
and why it is null."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("fleet", "0004_per_user_numbers"),
    ]

    operations = [
        migrations.AddField(
            model_name="host",
            name="swarm",
            field=models.JSONField(blank=True, default=None, null=True),
        ),
        migrations.AddField(
            model_name="host",
            name="swarm_reason",
            field=models.CharField(blank=True, help_text="Why `swarm` is null, after a check.", max_length=300),
        ),
    ]
