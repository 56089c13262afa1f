"""Pieces every app's API shares: the error shape and the exception handler."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, DataError, IntegrityError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from console.errors import DomainError, api_body, unique_violation

log = logging.getLogger(__name__)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, in words fit to show a user.")


def exception_handler(exc, context):
    """DRF's handler, plus the console's own errors as clear JSON answers instead of server errors. This is the
    one place a service's refusal (console/errors.py) becomes the API's answer: views do not catch it. The engine
    wrapper's errors are such refusals too (console.engine.EngineError: 502, unavailable 503, not found 404)."""
    if isinstance(exc, DomainError):
        return Response(api_body(exc), status=exc.status)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DataError):
        # A value the database cannot hold (too long for its column, say): the request's fault.
        return Response({"detail": "A value is too long or malformed for where it is stored."},
                        status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, IntegrityError) and (taken := unique_violation(exc)) is not None:
        # Two requests took one name at once and this one lost: the same 400 the service's own check gives.
        return Response(api_body(taken), status=taken.status)
    if isinstance(exc, DatabaseError):
        log.exception("Database error while answering an API request")
        return Response(
            {"detail": "The database is not available right now; try again shortly."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    return drf_exception_handler(exc, context)


# The lists' time filters (console/filters.py `moment_filters`), as the schema shows them.
CREATED_PARAMETERS = [
    OpenApiParameter("created_after", OpenApiTypes.DATETIME,
                     description="From this moment on (a date is its midnight, UTC), included."),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="Up to this moment, not included."),
]
