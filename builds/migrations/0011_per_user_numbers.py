"""Per-user numbers for builds and git imports (console/numbering.py): the field, the existing rows numbered per
owner in id order, then the constraint that keeps each owner's numbers their own once."""

from django.db import migrations, models

from console.numbering import number_existing_rows

NUMBER_HELP = "Its number among its owner's objects of its kind: 1, 2, 3..."


class Migration(migrations.Migration):
    dependencies = [
        ("builds", "0010_search_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="build",
            name="number",
            field=models.PositiveIntegerField(editable=False, help_text=NUMBER_HELP, null=True),
        ),
        migrations.AddField(
            model_name="sourceimport",
            name="number",
            field=models.PositiveIntegerField(editable=False, help_text=NUMBER_HELP, null=True),
        ),
        number_existing_rows("builds", "build", "sourceimport"),
        migrations.AddConstraint(
            model_name="build",
            constraint=models.UniqueConstraint(fields=("owner", "number"), name="unique_build_number_per_owner"),
        ),
        migrations.AddConstraint(
            model_name="sourceimport",
            constraint=models.UniqueConstraint(fields=("owner", "number"),
                                               name="unique_sourceimport_number_per_owner"),
        ),
    ]
