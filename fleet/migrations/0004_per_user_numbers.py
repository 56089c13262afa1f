"""Per-user numbers for deployments (console/numbering.py): the field, the existing rows numbered per owner in id
order, then the constraint that keeps each owner's numbers their own once."""

from django.db import migrations, models

from console.numbering import number_existing_rows

NUMBER_HELP = "Its number among its owner's objects of its kind: 1, 2, 3..."


class Migration(migrations.Migration):
    dependencies = [
        ("fleet", "0003_search_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="deployment",
            name="number",
            field=models.PositiveIntegerField(editable=False, help_text=NUMBER_HELP, null=True),
        ),
        number_existing_rows("fleet", "deployment"),
        migrations.AddConstraint(
            model_name="deployment",
            constraint=models.UniqueConstraint(fields=("owner", "number"), name="unique_deployment_number_per_owner"),
        ),
    ]
