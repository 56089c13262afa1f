from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=True)

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")


class AccessTokenForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="What the token is for, to tell it apart.")
