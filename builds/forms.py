from __future__ import annotations

from django import forms

from builds.constants import BuilderChoice
from builds.models import Repository


class RepositoryForm(forms.ModelForm):
    name = forms.RegexField(
        regex=r"^[a-z0-9]+(?:[._-][a-z0-9]+)*\Z",
        max_length=100,
        error_messages={"invalid": "Use lower-case letters and digits, separated by '.', '_' or '-'."},
        help_text="Lower-case, like an image name: my-app.",
    )

    class Meta:
        model = Repository
        fields = ["name", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}


class ArchiveUploadForm(forms.Form):
    archive = forms.FileField(help_text="tar, tar.gz, tar.bz2, tar.xz or zip: recognised by content.",
                              allow_empty_file=True)


class GitSourceForm(forms.Form):
    git_url = forms.CharField(label="Git URL", max_length=2000,
                              help_text="https://, http://, ssh:// or git:// URL of the repository; "
                                        "a worker clones it.")
    ref = forms.CharField(label="Ref", max_length=255, required=False,
                          help_text="A branch, tag or commit; the default branch when empty.")


class ContextForm(forms.Form):
    dockerfile = forms.CharField(max_length=1000, initial="Dockerfile", required=False,
                                 help_text="Relative to the context folder.")
    path = forms.CharField(label="Context folder", max_length=1000, initial=".", required=False)


def _pairs(text: str, field: str) -> dict[str, str]:
    """KEY=VALUE lines (blank lines and # comments ignored) as a dict; a form error for anything else."""
    pairs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise forms.ValidationError(f"Line {number} of {field} is not KEY=VALUE.")
        pairs[key.strip()] = value
    return pairs


class BuildForm(forms.Form):
    dockerfile = forms.CharField(max_length=1000, initial="Dockerfile", help_text="Relative to the context folder.")
    path = forms.CharField(label="Context folder", max_length=1000, initial=".")
    tags = forms.CharField(required=False, max_length=2000, help_text="Space-separated: my-app:1.0 my-app:latest")
    build_args = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                 help_text="KEY=VALUE per line.")
    secrets = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                              help_text="NAME=VALUE per line, for RUN --mount=type=secret,id=NAME: never in the image, "
                                        "shown nowhere.")
    secret_args = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                  help_text="Deprecated: KEY=VALUE per line, passed as secrets (refused where the "
                                            "Dockerfile reads them as an ARG).")
    builder = forms.ChoiceField(choices=BuilderChoice.choices, initial=BuilderChoice.AUTO, required=False,
                                help_text="Automatic: BuildKit, or the classic builder for memory and CPU limits.")
    labels = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="KEY=VALUE per line.")
    target = forms.CharField(required=False, max_length=200, help_text="A stage name, for multi-stage Dockerfiles.")
    no_cache = forms.BooleanField(required=False, label="Do not use the cache")
    memory_limit = forms.CharField(required=False, max_length=32, help_text="Per step, like 512m or 2g.")
    cpu_shares = forms.IntegerField(required=False, min_value=2)
    cpuset_cpus = forms.CharField(required=False, max_length=100, help_text="CPUs to use, like 0-1.")
    timeout = forms.IntegerField(required=False, min_value=1, max_value=24 * 3600, help_text="Seconds.")

    def clean_tags(self) -> list[str]:
        return self.cleaned_data["tags"].split()

    def clean_build_args(self) -> dict[str, str]:
        return _pairs(self.cleaned_data["build_args"], "build args")

    def clean_secrets(self) -> dict[str, str]:
        return _pairs(self.cleaned_data["secrets"], "secrets")

    def clean_secret_args(self) -> dict[str, str]:
        return _pairs(self.cleaned_data["secret_args"], "secret args")

    def clean_labels(self) -> dict[str, str]:
        return _pairs(self.cleaned_data["labels"], "labels")

    def options(self):
        from builds.services.builds import BuildOptions

        data = self.cleaned_data
        secrets = data["secret_args"]
        return BuildOptions(
            dockerfile=data["dockerfile"], path=data["path"], tags=data["tags"],
            build_args={**data["build_args"], **secrets}, secret_args=list(secrets), labels=data["labels"],
            secrets=data["secrets"], builder=data["builder"] or BuilderChoice.AUTO,
            target=data["target"], no_cache=data["no_cache"], memory_limit=data["memory_limit"],
            cpu_shares=data["cpu_shares"], cpuset_cpus=data["cpuset_cpus"], timeout=data["timeout"],
        )


class DebugForm(forms.Form):
    command = forms.CharField(max_length=10_000, widget=forms.TextInput(attrs={"placeholder": "ls -la /app"}))
