from __future__ import annotations

from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from console import throttle
from console.accounts import services
from console.accounts.api.serializers import (
    AccessTokenSerializer,
    NewTokenSerializer,
    SignupSerializer,
    TokenRequestSerializer,
    UserSerializer,
)
from console.accounts.models import AccessToken
from console.api import ErrorSerializer
from console.audit.constants import Action
from console.audit.services import record
from console.pagination import newest_first


def _anonymous_post(view):
    """A POST endpoint for callers without credentials yet (signing up, trading a password for a token)."""
    return api_view(["POST"])(authentication_classes([])(permission_classes([AllowAny])(view)))


def _validated(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    """The request's data as `serializer_class` validates it; a refusal is the usual 400."""
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


@extend_schema(
    request=SignupSerializer,
    responses={201: UserSerializer, 400: OpenApiResponse(ErrorSerializer, description="Field errors.")},
)
@_anonymous_post
def signup(request: Request) -> Response:
    data = _validated(SignupSerializer, request)
    try:
        user = services.create_user(data["username"], data["email"], data["password"])
    except DjangoValidationError as exc:
        # Another sign-up took the name between the serializer's check and the insert.
        raise serializers.ValidationError(exc.message_dict) from None
    record(user, Action.SIGNUP, target=user, detail={"via": "api"}, request=request._request)
    return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


@extend_schema(
    request=TokenRequestSerializer,
    responses={
        201: NewTokenSerializer,
        400: OpenApiResponse(ErrorSerializer, description="Bad credentials."),
        429: OpenApiResponse(ErrorSerializer, description="Too many failed attempts; see the Retry-After header."),
    },
)
@_anonymous_post
def create_token(request: Request) -> Response:
    data = _validated(TokenRequestSerializer, request)
    try:
        user = throttle.authenticate(
            request._request, data["username"],
            lambda: authenticate(request._request, username=data["username"], password=data["password"]), via="api",
        )
    except throttle.LoginLocked as exc:
        return Response({"detail": exc.message}, status=status.HTTP_429_TOO_MANY_REQUESTS,
                        headers={"Retry-After": str(exc.retry_after)})
    if user is None:
        return Response(
            {"detail": "Unable to log in with the given username and password."},
            status=status.HTTP_400_BAD_REQUEST,
        )
    token, raw = services.create_access_token(user, data.get("name", ""))
    record(user, Action.TOKEN_CREATED, target=token, detail={"via": "api"}, request=request._request)
    return Response({"token": raw, "name": token.name}, status=status.HTTP_201_CREATED)


@extend_schema(responses={200: UserSerializer})
@api_view(["GET"])
def me(request: Request) -> Response:
    return Response(UserSerializer(request.user).data)


class AccessTokenViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The caller's personal access tokens: list them, revoke one."""

    serializer_class = AccessTokenSerializer

    def get_queryset(self):
        return newest_first(AccessToken.objects.for_user(self.request.user))

    def perform_destroy(self, instance: AccessToken) -> None:
        record(self.request.user, Action.TOKEN_REVOKED, target=instance, detail={"via": "api"},
               request=self.request._request)
        services.revoke_access_token(instance)
