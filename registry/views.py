from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from builds.models import Image
from console import jobs
from console.errors import DomainError, run_form
from registry import services
from registry.forms import PullForm, PushForm, RegistryAccountForm, RetentionForm, image_app_name
from registry.models import GarbageCollection, PublicRepository, Pull, Push, RegistryAccount, RetentionRun
from registry.services import browse, gc, retention, usage
from registry.tokens import namespace_of


def _get_account_for_user(request: HttpRequest, pk: int) -> RegistryAccount:
    return get_object_or_404(RegistryAccount.objects.for_user(request.user), pk=pk)


def _account_form(request: HttpRequest, form: RegistryAccountForm, account: RegistryAccount | None,
                  save: Callable[[dict], RegistryAccount], done: str) -> HttpResponse:
    """The account form (a new account's when `account` is None); once `save` has saved it, the account's page."""
    if saved := run_form(request, form, save):
        messages.success(request, f"Registry account “{saved.name}” was {done}.")
        return redirect("registry:registry-detail", pk=saved.pk)
    return render(request, "registry/registry_form.html", {"form": form, "account": account})


def _transfers(request: HttpRequest, model: type[Push | Pull]) -> QuerySet:
    """The user's pushes or pulls, for the list below their form: the latest 20."""
    return model.objects.for_user(request.user).select_related("registry")[:20]


def _transfer_page(request: HttpRequest, model: type[Push | Pull], pk: int) -> HttpResponse:
    """A push's or a pull's page: one template, the API's detail URL to poll (`push-detail`, `pull-detail`)."""
    job = get_object_or_404(model.objects.for_user(request.user).select_related("registry"), pk=pk)
    kind = model.__name__.lower()
    context = {"job": job, "kind": kind, "api": reverse(f"{kind}-detail", args=[pk])}
    return render(request, "registry/transfer_detail.html", context)


@login_required
@require_GET
def registry_list(request: HttpRequest) -> HttpResponse:
    return render(request, "registry/registry_list.html", {"accounts": services.accounts_for(request.user)})


@login_required
@require_http_methods(["GET", "POST"])
def registry_create(request: HttpRequest) -> HttpResponse:
    form = RegistryAccountForm(request.POST or None)
    return _account_form(request, form, None, lambda data: services.create_account(request.user, data), "added")


@login_required
@require_GET
def registry_detail(request: HttpRequest, pk: int) -> HttpResponse:
    account = _get_account_for_user(request, pk)
    repositories, browse_error = [], ""
    try:
        repositories = services.list_repositories(account)
    except services.RegistryError as exc:
        browse_error = str(exc)
    public = set(PublicRepository.objects.for_user(request.user).values_list("name", flat=True))
    storage = usage.usage_for(request.user) if account.is_console else None
    sizes = {entry.name: entry for entry in storage.repositories} if storage else {}
    context = {
        "account": account,
        "storage": storage,
        "rows": [(name, sizes.get(name)) for name in repositories],
        "repositories": repositories,
        "browse_error": browse_error,
        "public": public,
        "namespace": namespace_of(request.user),
    }
    return render(request, "registry/registry_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def registry_edit(request: HttpRequest, pk: int) -> HttpResponse:
    account = _get_account_for_user(request, pk)
    if account.is_console:
        messages.error(request, "The console's registry account is managed by the console.")
        return redirect("registry:registry-detail", pk=account.pk)
    initial = {name: getattr(account, name) for name in ("name", "kind", "url", "username", "ca_certificate")}
    form = RegistryAccountForm(request.POST or None, initial=initial, editing=True)
    return _account_form(request, form, account, lambda data: services.update_account(account, data), "saved")


@login_required
@require_POST
def registry_delete(request: HttpRequest, pk: int) -> HttpResponse:
    account = _get_account_for_user(request, pk)
    try:
        services.delete_account(account)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("registry:registry-detail", pk=account.pk)
    messages.success(request, f"Registry account “{account.name}” was deleted.")
    return redirect("registry:registry-list")


@login_required
@require_POST
def registry_test(request: HttpRequest, pk: int) -> HttpResponse:
    account = _get_account_for_user(request, pk)
    ok, detail = services.check_login(account)
    (messages.success if ok else messages.error)(request, detail if ok else f"Login failed: {detail}")
    return redirect("registry:registry-detail", pk=account.pk)


def _retention_context(account: RegistryAccount, name: str, form: RetentionForm | None = None) -> dict:
    """The tags page's retention panel: the rule's form, its dry run and the latest runs (the console's registry,
    in the user's own namespace)."""
    if not account.is_console or not browse.may_delete(account, name):
        return {}
    rule = retention.get_rule(account, name)
    context: dict = {"retention_rule": rule, "retention_form": form or RetentionForm.for_rule(rule),
                     "retention_runs": RetentionRun.objects.for_user(account.owner).filter(repository=name)[:5]}
    if rule is not None:
        try:
            context["retention_preview"] = retention.preview(account, name)
        except ValidationError as exc:
            context["retention_error"] = " ".join(exc.messages)
    return context


def _tags_page(request: HttpRequest, account: RegistryAccount, name: str, form: RetentionForm | None = None,
               status: int = 200) -> HttpResponse:
    page, error = None, ""
    try:
        page = browse.tags_page(account, name, last=request.GET.get("last", ""))
    except (services.RegistryError, ValidationError) as exc:
        error = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    context = {"account": account, "name": name, "page": page, "error": error,
               "reference": account.endpoint.reference(name), **_retention_context(account, name, form)}
    return render(request, "registry/registry_tags.html", context, status=status)


@login_required
@require_GET
def registry_tags(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    return _tags_page(request, _get_account_for_user(request, pk), name)


@login_required
@require_GET
def registry_open(request: HttpRequest, pk: int) -> HttpResponse:
    """The "open a repository by its name" form: to that repository's tags page."""
    account = _get_account_for_user(request, pk)
    try:
        name = browse.repository_name(account, request.GET.get("name", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("registry:registry-detail", pk=account.pk)
    return redirect("registry:registry-tags", pk=account.pk, name=name)


def _refusal(exc: Exception) -> str:
    return " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)


@login_required
@require_POST
def registry_tag_delete(request: HttpRequest, pk: int, name: str, tag: str) -> HttpResponse:
    account = _get_account_for_user(request, pk)
    also = request.POST.getlist("also")
    try:
        digest = browse.delete_tag(request.user, account, name, tag, request.POST.get("digest", ""), request,
                                   also=also)
        gone = ", ".join(f"{name}:{each}" for each in sorted({tag, *also}))
        messages.success(request, f"Deleted {gone} ({digest}).")
    except (services.RegistryError, ValidationError) as exc:
        messages.error(request, _refusal(exc))
    return redirect("registry:registry-tags", pk=account.pk, name=name)


@login_required
@require_POST
def registry_repository_delete(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    account = _get_account_for_user(request, pk)
    try:
        deleted = browse.delete_repository(request.user, account, name, request)
    except (services.RegistryError, ValidationError) as exc:
        messages.error(request, _refusal(exc))
        return redirect("registry:registry-tags", pk=account.pk, name=name)
    count = len(deleted.tags)
    messages.success(request, f"Deleted {name}: {count} tag{'s' if count != 1 else ''} "
                              f"({', '.join(deleted.tags)}). Its space returns at the next garbage collection.")
    return redirect("registry:registry-detail", pk=account.pk)


@login_required
@require_POST
def registry_retention(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    """Save the repository's retention rule (`remove` removes it, `apply` applies the saved rule now)."""
    account = _get_account_for_user(request, pk)
    try:
        if "remove" in request.POST:
            retention.remove_rule(request.user, account, name, request)
            messages.success(request, f"{name} has no retention rule any more.")
        elif "apply" in request.POST:
            run = retention.trigger_run(request.user, account, name, request=request)
            messages.success(request, f"Retention run #{run.pk} of {name} is {run.get_status_display().lower()}.")
        else:
            form = RetentionForm(request.POST)
            if not run_form(request, form, lambda data: retention.set_rule(request.user, account, name,
                                                                             form.rule_data(), request)):
                return _tags_page(request, account, name, form, status=400)
            messages.success(request, f"Saved the retention rule of {name}.")
    except (services.RegistryError, ValidationError) as exc:
        messages.error(request, _refusal(exc))
    return redirect("registry:registry-tags", pk=account.pk, name=name)


@login_required
@require_POST
def registry_publish(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    account = _get_account_for_user(request, pk)
    if not account.is_console:
        messages.error(request, "Only repositories of the console's registry can be made public here.")
    elif request.POST.get("public") == "1":
        try:
            services.make_public(request.user, name)
            messages.success(request, f"{name} is now public: anyone may pull it.")
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    else:
        services.make_private(request.user, name)
        messages.success(request, f"{name} is private again.")
    return redirect("registry:registry-detail", pk=account.pk)


def _push_initial(request: HttpRequest, accounts: QuerySet) -> dict:
    """The push form as the image page opens it (`?image=<record number>`): that image picked, the console's
    registry chosen and the repository named `<username>/<the image's name>`."""
    initial: dict = {"tag": "latest"}
    console = next((account for account in accounts if account.is_console), None)
    if console is not None:
        initial["registry"] = console.pk
    chosen = request.GET.get("image", "").strip()
    if chosen.isdigit():
        image = Image.objects.for_user(request.user).select_related("repository").filter(pk=int(chosen)).first()
        if image is not None:
            initial["picked"] = image.pk
            if name := image_app_name(image):
                initial["repository"] = f"{namespace_of(request.user)}/{name}"
    elif chosen:
        initial["image"] = chosen
    return initial


@login_required
@require_http_methods(["GET", "POST"])
def push_create(request: HttpRequest) -> HttpResponse:
    accounts = services.accounts_for(request.user)
    form = PushForm(request.user, request.POST or None, accounts=accounts, initial=_push_initial(request, accounts))
    push = run_form(request, form, lambda data: services.trigger_push(
        request.user, data["image"], data["registry"], data["repository"], data["tag"]))
    if push:
        return redirect("registry:push-detail", pk=push.pk)
    return render(request, "registry/push_form.html", {"form": form, "pushes": _transfers(request, Push)})


@login_required
@require_GET
def push_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _transfer_page(request, Push, pk)


@login_required
@require_http_methods(["GET", "POST"])
def pull_create(request: HttpRequest) -> HttpResponse:
    accounts = services.accounts_for(request.user)
    form = PullForm(request.POST or None, accounts=accounts)
    pull = run_form(request, form, lambda data: services.trigger_pull(
        request.user, data["registry"], data["reference"]))
    if pull:
        return redirect("registry:pull-detail", pk=pull.pk)
    return render(request, "registry/pull_form.html", {"form": form, "pulls": _transfers(request, Pull)})


@login_required
@require_GET
def pull_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _transfer_page(request, Pull, pk)


def _staff_only(request: HttpRequest) -> None:
    if not request.user.is_staff:
        raise PermissionDenied(gc.STAFF_ONLY)


@login_required
@require_http_methods(["GET", "POST"])
def gc_list(request: HttpRequest) -> HttpResponse:
    """Staff: collect the console registry's garbage; the latest collections; every namespace's storage."""
    _staff_only(request)
    if request.method == "POST":
        try:
            job = gc.trigger_gc(request.user, request.POST.get("delete_untagged") == "1", request)
            return redirect("registry:gc-detail", pk=job.pk)
        except (services.RegistryError, ValidationError, DomainError) as exc:
            messages.error(request, _refusal(exc))
    context = {"collections": GarbageCollection.objects.select_related("requested_by")[:20],
               "namespaces": sorted(usage.usage().values(), key=lambda entry: -entry.total_bytes)}
    return render(request, "registry/gc_list.html", context)


@login_required
@require_GET
def gc_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _staff_only(request)
    job = get_object_or_404(GarbageCollection.objects.select_related("requested_by"), pk=pk)
    return render(request, "registry/gc_detail.html", {"job": job, "log": jobs.log_text(job)})
