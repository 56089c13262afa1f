from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console.errors import FORM_ERRORS, add_domain_error
from registry import services
from registry.forms import PullForm, PushForm, RegistryAccountForm
from registry.models import PublicRepository, Pull, Push, RegistryAccount
from registry.tokens import namespace_of


def _get_account_for_user(request: HttpRequest, pk: int) -> RegistryAccount:
    return get_object_or_404(RegistryAccount.objects.for_user(request.user), pk=pk)


@login_required
@require_GET
def registry_list(request: HttpRequest) -> HttpResponse:
    return render(request, "registry/registry_list.html", {"accounts": services.accounts_for(request.user)})


@login_required
@require_http_methods(["GET", "POST"])
def registry_create(request: HttpRequest) -> HttpResponse:
    form = RegistryAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            account = services.create_account(request.user, form.cleaned_data)
        except FORM_ERRORS as exc:
            add_domain_error(form, exc)
        else:
            messages.success(request, f"Registry account “{account.name}” was added.")
            return redirect("registry:registry-detail", pk=account.pk)
    return render(request, "registry/registry_form.html", {"form": form, "account": None})


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
    context = {
        "account": account,
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
    if request.method == "POST" and form.is_valid():
        try:
            services.update_account(account, form.cleaned_data)
        except FORM_ERRORS as exc:
            add_domain_error(form, exc)
        else:
            messages.success(request, f"Registry account “{account.name}” was saved.")
            return redirect("registry:registry-detail", pk=account.pk)
    return render(request, "registry/registry_form.html", {"form": form, "account": account})


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


@login_required
@require_GET
def registry_tags(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    account = _get_account_for_user(request, pk)
    tags, error = [], ""
    try:
        tags = services.list_tags(account, name)
    except (services.RegistryError, ValidationError) as exc:
        error = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    context = {"account": account, "name": name, "tags": tags, "error": error,
               "reference": account.endpoint.reference(name)}
    return render(request, "registry/registry_tags.html", context)


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


@login_required
@require_http_methods(["GET", "POST"])
def push_create(request: HttpRequest) -> HttpResponse:
    accounts = services.accounts_for(request.user)
    form = PushForm(request.POST or None, accounts=accounts, initial={"image": request.GET.get("image", "")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            push = services.trigger_push(request.user, data["image"], data["registry"], data["repository"],
                                         data["tag"])
        except FORM_ERRORS as exc:
            add_domain_error(form, exc)
        else:
            return redirect("registry:push-detail", pk=push.pk)
    pushes = Push.objects.for_user(request.user).select_related("registry")[:20]
    return render(request, "registry/push_form.html", {"form": form, "pushes": pushes})


@login_required
@require_GET
def push_detail(request: HttpRequest, pk: int) -> HttpResponse:
    push = get_object_or_404(Push.objects.for_user(request.user).select_related("registry"), pk=pk)
    context = {"job": push, "kind": "push", "api": reverse("push-detail", args=[pk])}
    return render(request, "registry/transfer_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def pull_create(request: HttpRequest) -> HttpResponse:
    accounts = services.accounts_for(request.user)
    form = PullForm(request.POST or None, accounts=accounts)
    if request.method == "POST" and form.is_valid():
        try:
            pull = services.trigger_pull(request.user, form.cleaned_data["registry"], form.cleaned_data["reference"])
        except FORM_ERRORS as exc:
            add_domain_error(form, exc)
        else:
            return redirect("registry:pull-detail", pk=pull.pk)
    pulls = Pull.objects.for_user(request.user).select_related("registry")[:20]
    return render(request, "registry/pull_form.html", {"form": form, "pulls": pulls})


@login_required
@require_GET
def pull_detail(request: HttpRequest, pk: int) -> HttpResponse:
    pull = get_object_or_404(Pull.objects.for_user(request.user).select_related("registry"), pk=pk)
    context = {"job": pull, "kind": "pull", "api": reverse("pull-detail", args=[pk])}
    return render(request, "registry/transfer_detail.html", context)
