"""Trigram indexes for the image and build lists' search (`q`: image tags and labels, build tags)."""

from django.db import migrations

from console.search_indexes import trigram_indexes


class Migration(migrations.Migration):
    dependencies = [("builds", "0009_build_secrets_and_builders")]

    operations = [
        trigram_indexes(
            ("builds_image_tags_search", "builds_image", "upper((tags)::text)"),
            ("builds_image_labels_search", "builds_image", "upper((labels)::text)"),
            ("builds_build_tags_search", "builds_build", "upper((tags)::text)"),
        ),
    ]
