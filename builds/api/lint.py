"""POST /api/v1/lint/: lint a Dockerfile sent as text."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from builds.dockerfile.lint import MAX_DOCKERFILE_BYTES, SEVERITIES, LintError, lint_dockerfile


class StrictTextField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into text."""

    default_error_messages = {"not_text": "Must be the Dockerfile's text (a string)."}

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("not_text")
        return super().to_internal_value(data)


class LintRequestSerializer(serializers.Serializer):
    # Not trimmed: leading blank lines count for the line numbers of the findings.
    dockerfile = StrictTextField(
        trim_whitespace=False,
        help_text=f"The Dockerfile's text, at most {MAX_DOCKERFILE_BYTES} bytes of UTF-8.",
        error_messages={"blank": "The Dockerfile is empty.", "required": "Send the Dockerfile's text."},
    )

    def validate_dockerfile(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("The Dockerfile is empty.")
        if len(value.encode("utf-8", errors="surrogatepass")) > MAX_DOCKERFILE_BYTES:
            raise serializers.ValidationError(f"The Dockerfile is larger than {MAX_DOCKERFILE_BYTES} bytes (1 MB).")
        return value


class FindingSerializer(serializers.Serializer):
    rule = serializers.CharField(help_text="hadolint's code (DL…, SC…) or the console's own (CONSOLE…).")
    line = serializers.IntegerField(help_text="The line the instruction starts on, from 1.")
    severity = serializers.ChoiceField(choices=SEVERITIES)
    message = serializers.CharField()

    class Meta:
        fields = ["rule", "line", "severity", "message"]


class LintErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="Why the Dockerfile could not be linted.")
    line = serializers.IntegerField(allow_null=True, help_text="The line at fault, when there is one.")


@extend_schema(
    operation_id="lint_dockerfile",
    summary="Lint a Dockerfile",
    description=(
        "hadolint's rules plus the practices the console always reports (CONSOLE001-CONSOLE008), "
        "sorted by line. A Dockerfile that does not parse is a 400 naming the line."
    ),
    request=LintRequestSerializer,
    responses={
        200: FindingSerializer(many=True),
        400: OpenApiResponse(
            LintErrorSerializer,
            description=(
                "A Dockerfile that cannot be linted (does not parse, not text): `detail` and `line`. A missing, "
                "blank, non-string or oversized `dockerfile` gets field errors instead: `{\"dockerfile\": [...]}`."
            ),
        ),
    },
    examples=[OpenApiExample("A Dockerfile", value={"dockerfile": "FROM busybox:1.35.0\nUSER 1000\n"},
                             request_only=True)],
)
@api_view(["POST"])
def lint(request: Request) -> Response:
    try:
        data = request.data
    except RequestDataTooBig:
        # Django refuses bodies over DATA_UPLOAD_MAX_MEMORY_SIZE with an HTML page: answer in the API's shape.
        return Response(
            {"dockerfile": [f"The Dockerfile is larger than {MAX_DOCKERFILE_BYTES} bytes (1 MB)."]},
            status=status.HTTP_400_BAD_REQUEST,
        )
    serializer = LintRequestSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    try:
        findings = lint_dockerfile(serializer.validated_data["dockerfile"])
    except LintError as exc:
        return Response({"detail": exc.message, "line": exc.line}, status=status.HTTP_400_BAD_REQUEST)
    return Response(FindingSerializer([finding.as_dict() for finding in findings], many=True).data)
