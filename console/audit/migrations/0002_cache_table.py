"""The database cache table (settings.CACHES with CACHE_URL=db://, the default), made by `migrate` so that no
deployment step is forgotten. The login throttle (console/throttle.py) keeps its counters there."""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    # Does nothing when the cache is not a database one or the table exists.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
