"""Browser pages for repositories and sources."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from builds.forms import ArchiveUploadForm, ContextForm, GitSourceForm, RepositoryForm
from builds.models import Repository, Source, SourceImport
from builds.services import repositories
from builds.services.checks import check_source
from builds.sources.archives import ArchiveError
from builds.sources.context import ContextError, plan_context
from builds.sources.filetree import file_tree_rows
from builds.sources.git import GitError
from console import jobs
from console.errors import run_form


def _get_repository_for_user(request: HttpRequest, pk: int) -> Repository:
    return get_object_or_404(Repository.objects.for_user(request.user), pk=pk)


def _get_source_for_user(request: HttpRequest, pk: int) -> Source:
    return get_object_or_404(Source.objects.for_user(request.user).select_related("repository"), pk=pk)


@login_required
@require_GET
def repository_list(request: HttpRequest) -> HttpResponse:
    repositories = Repository.objects.for_user(request.user)
    return render(request, "builds/repository_list.html", {"repositories": repositories})


@login_required
@require_http_methods(["GET", "POST"])
def repository_create(request: HttpRequest) -> HttpResponse:
    form = RepositoryForm(request.POST or None)
    if repository := run_form(request, form, lambda data: repositories.create_repository(request.user, **data)):
        messages.success(request, f"Repository {repository.name} created.")
        return redirect("builds:repository-detail", pk=repository.pk)
    return render(request, "builds/repository_form.html", {"form": form})


@login_required
@require_GET
def repository_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_detail(request, _get_repository_for_user(request, pk))


@login_required
@require_http_methods(["GET", "POST"])
def repository_edit(request: HttpRequest, pk: int) -> HttpResponse:
    repository = _get_repository_for_user(request, pk)
    form = RepositoryForm(request.POST or None, instance=repository)
    if run_form(request, form, lambda data: repositories.update_repository(repository, **data)):
        messages.success(request, "Repository saved.")
        return redirect("builds:repository-detail", pk=repository.pk)
    return render(request, "builds/repository_form.html", {"form": form, "repository": repository})


@login_required
@require_POST
def repository_delete(request: HttpRequest, pk: int) -> HttpResponse:
    repository = _get_repository_for_user(request, pk)
    repositories.delete_repository(repository)
    messages.success(request, f"Repository {repository.name} deleted.")
    return redirect("builds:repository-list")


def _render_detail(request, repository, upload_form=None, git_form=None) -> HttpResponse:
    """The repository's page; with a refused form, that form with its errors (a 400)."""
    context = {
        "repository": repository,
        "sources": repository.sources.all(),
        "builds": repository.builds.all()[:50],
        "imports": repository.imports.filter(source__isnull=True)[:10],
        "upload_form": upload_form or ArchiveUploadForm(),
        "git_form": git_form or GitSourceForm(),
    }
    return render(request, "builds/repository_detail.html", context,
                  status=400 if upload_form or git_form else 200)


@login_required
@require_POST
def source_upload(request: HttpRequest, pk: int) -> HttpResponse:
    repository = _get_repository_for_user(request, pk)
    form = ArchiveUploadForm(request.POST, request.FILES)
    if form.is_valid():
        archive = form.cleaned_data["archive"]
        try:
            source = repositories.add_archive_source(repository, archive, archive.name or "")
        except ArchiveError as exc:
            form.add_error("archive", str(exc))
        else:
            messages.success(request, f"Source stored: {source.file_count} files.")
            return redirect("builds:source-detail", pk=source.pk)
    return _render_detail(request, repository, upload_form=form)


@login_required
@require_POST
def source_from_git(request: HttpRequest, pk: int) -> HttpResponse:
    repository = _get_repository_for_user(request, pk)
    form = GitSourceForm(request.POST)
    if form.is_valid():
        try:
            job = repositories.start_git_import(repository, form.cleaned_data["git_url"], form.cleaned_data["ref"])
        except GitError as exc:
            form.add_error("git_url", str(exc))
        else:
            return redirect("builds:source-import-detail", pk=job.pk)
    return _render_detail(request, repository, git_form=form)


@login_required
@require_GET
def source_import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A git clone's progress: the page polls the API (static/js/source-import.js) and opens the source when done."""
    job = get_object_or_404(SourceImport.objects.for_user(request.user).select_related("repository", "source"), pk=pk)
    return render(request, "builds/source_import_detail.html", {"job": job, "repository": job.repository,
                                                         "log": jobs.log_text(job)})


@login_required
@require_GET
def source_detail(request: HttpRequest, pk: int) -> HttpResponse:
    source = _get_source_for_user(request, pk)
    form = ContextForm(request.GET or None)
    dockerfile, path = "Dockerfile", "."
    if form.is_valid():
        dockerfile = form.cleaned_data["dockerfile"] or "Dockerfile"
        path = form.cleaned_data["path"] or "."
    plan, error = None, None
    try:
        plan = plan_context(source, dockerfile, path)
    except ContextError as exc:
        error = str(exc)
    context = {
        "source": source,
        "repository": source.repository,
        "form": form if request.GET else ContextForm(initial={"dockerfile": dockerfile, "path": path}),
        "plan": plan,
        "error": error,
        "rows": file_tree_rows(plan.files) if plan else [],
        "warnings": plan.warnings() if plan else [],
        "checks": check_source(source, dockerfile, path) if plan else None,
        "dockerfile": dockerfile,
        "path": path,
    }
    return render(request, "builds/source_detail.html", context)


@login_required
@require_POST
def source_delete(request: HttpRequest, pk: int) -> HttpResponse:
    source = _get_source_for_user(request, pk)
    repository = source.repository
    repositories.delete_source(source)
    messages.success(request, "Source deleted.")
    return redirect("builds:repository-detail", pk=repository.pk)

