from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from console.accounts import usernames
from console.accounts.models import AccessToken

User = get_user_model()


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email"]


class SignupSerializer(serializers.Serializer):
    # The rules are accounts/usernames.py's (the browser form applies the same); 150 is the column's length, checked
    # first so that nothing longer is even normalised.
    username = serializers.CharField(max_length=150, help_text=usernames.HELP_TEXT)
    email = serializers.EmailField()
    password = serializers.CharField(write_only=True, trim_whitespace=False, style={"input_type": "password"})

    def validate_username(self, value: str) -> str:
        try:
            return usernames.validate_new(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from None

    def validate(self, attrs: dict) -> dict:
        candidate = User(username=attrs["username"], email=attrs["email"])
        try:
            validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": list(exc.messages)}) from None
        return attrs


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)


class NewTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="The token itself: shown once, keep it safe.")
    name = serializers.CharField()


class AccessTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = AccessToken
        fields = ["id", "name", "prefix", "created", "last_used"]
