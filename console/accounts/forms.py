from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.forms import AdminUserCreationForm, AuthenticationForm, UserChangeForm, UserCreationForm

from console import throttle
from console.accounts import usernames


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=True)

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].help_text = usernames.HELP_TEXT

    def clean_username(self) -> str:
        # The field has NFKC-normalised the value already (UsernameField); the rules and the case-insensitive
        # uniqueness check are the ones the API applies (accounts/usernames.py).
        return usernames.validate_new(self.cleaned_data["username"])


class AdminUserAddForm(AdminUserCreationForm):
    """The admin's "add user" form: staff make accounts under the same username rules as sign-up."""

    def clean_username(self) -> str:
        return usernames.validate_new(self.cleaned_data["username"])


class AdminUserEditForm(UserChangeForm):
    """The admin's user form: a new username follows the rules; an old one that predates them may stay."""

    def clean_username(self) -> str:
        name = self.cleaned_data["username"]
        if self.instance.pk and name == self.instance.get_username():
            return name
        return usernames.validate_new(name, exclude_pk=self.instance.pk)


class ThrottledLoginMixin:
    """The password checked through the login throttle (console/throttle.py); a locked attempt is a form error
    and `locked` says for how long, so that the view can answer 429."""

    locked: throttle.LoginLocked | None = None
    # The face the audit log names for these attempts.
    via = "browser"

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            try:
                self.user_cache = throttle.authenticate(
                    self.request, username, lambda: authenticate(self.request, username=username, password=password),
                    via=self.via,
                )
            except throttle.LoginLocked as exc:
                self.locked = exc
                raise forms.ValidationError(exc.message, code="locked") from None
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class LoginForm(ThrottledLoginMixin, AuthenticationForm):
    """Django's login form, throttled."""


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """The admin site's login form (staff only), throttled with the same counters as every other face."""

    via = "admin"


class AccessTokenForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="What the token is for, to tell it apart.")
