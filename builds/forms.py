from __future__ import annotations

from django import forms

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
                              help_text="file://, https:// or ssh:// URL of the repository.")
    ref = forms.CharField(label="Ref", max_length=255, required=False,
                          help_text="A branch, tag or commit; the default branch when empty.")


class ContextForm(forms.Form):
    dockerfile = forms.CharField(max_length=1000, initial="Dockerfile", required=False,
                                 help_text="Relative to the context folder.")
    path = forms.CharField(label="Context folder", max_length=1000, initial=".", required=False)
