"""Per-user numbers: each user's builds are their build 1, 2, 3..., likewise their pushes, pulls, deployments and
git imports (each kind counted on its own). The browser names objects by these numbers ("build #3"); URLs and
the API keep the ids, which all users share (the API shows `number` beside `id`).

A model takes `NumberedPerOwner` (it must have an `owner`) and `unique_number_per_owner(<its name>)` in its
Meta's constraints. The number is given when a row is first saved: one more than the owner's highest. Two
creations at once may both read the same highest (PostgreSQL, READ COMMITTED); the unique constraint lets one
in and the other takes the next number (a few attempts). SQLite's IMMEDIATE transactions let one writer at a
time in, so it never races.
"""

from __future__ import annotations

from django.db import IntegrityError, migrations, models, transaction

# Each lost race means a rival committed a number meanwhile: a few attempts outlast any realistic burst of one
# user's own creations.
NUMBER_ATTEMPTS = 5
# Rows numbered per UPDATE batch by the migrations that number existing rows.
BACKFILL_BATCH = 1000


def unique_number_per_owner(model_name: str) -> models.UniqueConstraint:
    """The constraint that makes a number one owner's once: one per model, named after it."""
    return models.UniqueConstraint(fields=["owner", "number"], name=f"unique_{model_name}_number_per_owner")


class NumberedPerOwner(models.Model):
    """A row numbered 1, 2, 3... among its owner's rows of its model (see the module's docstring)."""

    # Null for rows made by bulk_create (tests, bench), which skips save(): display_number names them by id.
    number = models.PositiveIntegerField(null=True, editable=False,
                                         help_text="Its number among its owner's objects of its kind: 1, 2, 3...")

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        if self.number is not None or not self._state.adding:
            super().save(*args, **kwargs)
            return
        for attempt in range(1, NUMBER_ATTEMPTS + 1):
            try:
                # A savepoint: a lost race undoes this INSERT only, not the caller's transaction around it.
                with transaction.atomic():
                    self.number = self._next_number()
                    super().save(*args, **kwargs)
                return
            except IntegrityError:
                taken = self._owned().filter(number=self.number).exists()
                self.number = None
                # Another IntegrityError (a missing owner, say) is the caller's to see, as is a burst that
                # outlasts the attempts.
                if not taken or attempt == NUMBER_ATTEMPTS:
                    raise

    @property
    def display_number(self) -> int | None:
        """What the browser shows after "#": the per-user number, or the id of a row that has none."""
        return self.number or self.pk

    def _owned(self) -> models.QuerySet:
        return type(self)._base_manager.filter(owner_id=self.owner_id)

    def _next_number(self) -> int:
        highest = self._owned().aggregate(highest=models.Max("number"))["highest"]
        return (highest or 0) + 1


def number_existing_rows(app_label: str, *model_names: str) -> migrations.RunPython:
    """A migration's step that numbers the rows made before numbers: each owner's 1, 2, 3... in id order.
    Backwards it does nothing (the number goes with its field)."""

    def forwards(apps, schema_editor) -> None:
        alias = schema_editor.connection.alias
        for model_name in model_names:
            rows = apps.get_model(app_label, model_name)._base_manager.using(alias)
            counts: dict[int, int] = {}
            batch = []
            for row in rows.order_by("owner_id", "pk").only("pk", "owner_id").iterator(chunk_size=BACKFILL_BATCH):
                counts[row.owner_id] = row.number = counts.get(row.owner_id, 0) + 1
                batch.append(row)
                if len(batch) == BACKFILL_BATCH:
                    rows.bulk_update(batch, ["number"])
                    batch = []
            rows.bulk_update(batch, ["number"])

    return migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False)
