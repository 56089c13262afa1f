from __future__ import annotations

from django import forms
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm

from console import throttle


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=True)

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")


class LoginForm(AuthenticationForm):
    """Django's login form, with the password checked through the login throttle (console/throttle.py)."""

    locked: throttle.LoginLocked | None = None

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            try:
                self.user_cache = throttle.authenticate(
                    self.request, username, lambda: authenticate(self.request, username=username, password=password),
                    via="browser",
                )
            except throttle.LoginLocked as exc:
                self.locked = exc
                raise forms.ValidationError(exc.message, code="locked") from None
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class AccessTokenForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="What the token is for, to tell it apart.")
