from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("builds", "0006_git_imports")]

    operations = [
        migrations.CreateModel(
            name="SharedImage",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("reference", models.CharField(help_text="The normalised name, like busybox:1.35.0.", max_length=255,
                                               unique=True)),
                ("image_id", models.CharField(blank=True, help_text="The id it had on the build engine when shared.",
                                              max_length=100)),
                ("shared_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={"ordering": ["reference"]},
        ),
    ]
