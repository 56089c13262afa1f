"""Per-user numbers for pushes and pulls (console/numbering.py): the field, the existing rows numbered per owner
in id order, then the constraint that keeps each owner's numbers their own once."""

from django.db import migrations, models

from console.numbering import number_existing_rows

NUMBER_HELP = "Its number among its owner's objects of its kind: 1, 2, 3..."


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="push",
            name="number",
            field=models.PositiveIntegerField(editable=False, help_text=NUMBER_HELP, null=True),
        ),
        migrations.AddField(
            model_name="pull",
            name="number",
            field=models.PositiveIntegerField(editable=False, help_text=NUMBER_HELP, null=True),
        ),
        number_existing_rows("registry", "push", "pull"),
        migrations.AddConstraint(
            model_name="push",
            constraint=models.UniqueConstraint(fields=("owner", "number"), name="unique_push_number_per_owner"),
        ),
        migrations.AddConstraint(
            model_name="pull",
            constraint=models.UniqueConstraint(fields=("owner", "number"), name="unique_pull_number_per_owner"),
        ),
    ]
