from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_http_methods, require_POST

from console import crypto
from console.accounts import services
from console.accounts.forms import AccessTokenForm, LoginForm, SignupForm
from console.accounts.models import AccessToken
from console.audit.constants import Action
from console.audit.services import record


class LoginView(auth_views.LoginView):
    """Django's login page, throttled: a locked sign-in is a form error answered 429 with Retry-After."""

    authentication_form = LoginForm
    template_name = "accounts/user_login.html"
    redirect_authenticated_user = True
    # FormView would treat PUT as POST.
    http_method_names = ["get", "post", "head", "options"]

    def form_invalid(self, form: LoginForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.locked is not None:
            response.status_code = 429
            response["Retry-After"] = str(form.locked.retry_after)
        return response


def admin_login(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
    """The admin site's login page (its form is AdminLoginForm, accounts/admin.py), answered 429 with Retry-After
    when the throttle refused the attempt, like the console's own login page."""
    response = admin.site.login(request, extra_context)
    form = (getattr(response, "context_data", None) or {}).get("form")
    locked = getattr(form, "locked", None)
    if locked is not None:
        response.status_code = 429
        response["Retry-After"] = str(locked.retry_after)
    return response


class LogoutView(auth_views.LogoutView):
    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.user.is_authenticated:
            record(request.user, Action.SIGNOUT, target=request.user, request=request)
        return super().post(request, *args, **kwargs)


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change_form.html"
    success_url = reverse_lazy("accounts:password-change-done")

    def form_valid(self, form) -> HttpResponse:
        response = super().form_valid(form)
        record(self.request.user, Action.PASSWORD_CHANGED, target=self.request.user, request=self.request)
        return response


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.create_user(
                form.cleaned_data["username"], form.cleaned_data["email"], form.cleaned_data["password1"]
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            record(user, Action.SIGNUP, target=user, detail={"via": "browser"}, request=request)
            login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
            messages.success(request, f"Welcome, {user.username}. Your account is ready.")
            return redirect("dashboard")
    return render(request, "accounts/user_signup.html", {"form": form})


# The session key holding a token just created, encrypted, until the list page has shown it once.
NEW_TOKEN_SESSION_KEY = "accounts.new_token"


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    """The token list and its create form. A created token is shown once, on the page the post redirects to (so a
    refresh does not create a second one); until then it waits in the session, encrypted like secrets at rest."""
    form = AccessTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token, raw = services.create_access_token(request.user, form.cleaned_data["name"])
        record(request.user, Action.TOKEN_CREATED, target=token, detail={"via": "browser"}, request=request)
        request.session[NEW_TOKEN_SESSION_KEY] = {"id": token.pk, "secret": crypto.encrypt(raw)}
        return redirect("accounts:token-list")
    new_token = _pop_new_token(request)
    context = {"form": form, "tokens": AccessToken.objects.for_user(request.user), "new_token": new_token}
    response = render(request, "accounts/token_list.html", context, status=400 if form.errors else 200)
    if new_token:
        # Not kept by the browser's cache either: "Back" to this page must not show the token again.
        response["Cache-Control"] = "no-store"
    return response


def _pop_new_token(request: HttpRequest) -> str | None:
    """The token created just before, once: the first page that reads it removes it from the session."""
    stashed = request.session.pop(NEW_TOKEN_SESSION_KEY, None)
    if not stashed:
        return None
    try:
        return crypto.decrypt(stashed["secret"])
    except (crypto.DecryptionError, KeyError, TypeError):
        return None


@login_required
@require_POST
def revoke_token(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(AccessToken.objects.for_user(request.user), pk=pk)
    record(request.user, Action.TOKEN_REVOKED, target=token, detail={"via": "browser"}, request=request)
    services.revoke_access_token(token)
    messages.success(request, f"Token “{token.name}” was revoked.")
    return redirect("accounts:token-list")
