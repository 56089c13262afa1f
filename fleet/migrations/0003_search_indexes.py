"""Trigram indexes for the deployment list's search (`q`: the app's name, the image)."""

from django.db import migrations

from console.search_indexes import trigram_indexes


class Migration(migrations.Migration):
    dependencies = [("fleet", "0002_host_ssh_and_engine_id")]

    operations = [
        trigram_indexes(
            ("fleet_deployment_name_search", "fleet_deployment", "upper((name)::text)"),
            ("fleet_deployment_image_search", "fleet_deployment", "upper((image)::text)"),
        ),
    ]
