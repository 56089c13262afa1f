"""An image's installed packages and its SBOM (builds/services/packages.py): `images/{id}/packages/` and
`images/{id}/sbom/?format=cyclonedx|spdx`. Whose image it is decides as for every image (`for_user`): another
user's image is a 404."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.views import APIView

from builds.constants import PackageEcosystem, SbomFormat
from builds.models import Image, ImagePackage
from builds.services import packages
from console.api import ErrorSerializer

ERROR = OpenApiResponse(ErrorSerializer, description="Refused; `detail` (or the field) says why.")


class ImagePackageSerializer(serializers.ModelSerializer):
    # The index of the layer (as the image's layers list them) that introduced the package at this version.
    layer = serializers.SerializerMethodField()

    class Meta:
        model = ImagePackage
        fields = ["id", "ecosystem", "name", "version", "source_name", "source_version", "licence", "purl", "layer",
                  "path"]
        read_only_fields = fields

    def get_layer(self, package: ImagePackage) -> int | None:
        return package.layer.index if package.layer is not None else None


class PackageQuerySerializer(serializers.Serializer):
    ecosystem = serializers.ChoiceField(choices=PackageEcosystem.choices, required=False, default="")
    q = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)


def _image(request: Request, pk: int) -> Image:
    return get_object_or_404(Image.objects.for_user(request.user).select_related("analysis"), pk=pk)


class ImagePackageList(generics.ListAPIView):
    """The image's installed packages as its analysis read them, by ecosystem and name; 409 before it has."""

    serializer_class = ImagePackageSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("ecosystem", str, enum=PackageEcosystem.values, description="Only this kind."),
            OpenApiParameter("q", str, description="Part of the package's name."),
        ],
        responses={200: ImagePackageSerializer(many=True), 400: ERROR, 404: ERROR, 409: ERROR},
    )
    def get(self, request: Request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        image = _image(self.request, self.kwargs["id"])
        query = PackageQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return packages.image_packages(image, query.validated_data["ecosystem"], query.validated_data["q"])


class _FormatIsNotARenderer(DefaultContentNegotiation):
    """`?format=` names the SBOM's format here, not one of the API's renderers (DRF's own meaning of it)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        renderer = renderers[0]
        return renderer, renderer.media_type


class ImageSbom(APIView):
    """The image's SBOM as a download: CycloneDX 1.6 JSON or SPDX 2.3 JSON."""

    content_negotiation_class = _FormatIsNotARenderer

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=SbomFormat.values, required=True,
                                     description="cyclonedx (CycloneDX 1.6 JSON) or spdx (SPDX 2.3 JSON).")],
        responses={(200, "application/vnd.cyclonedx+json"): OpenApiTypes.OBJECT,
                   (200, "application/spdx+json"): OpenApiTypes.OBJECT, 400: ERROR, 404: ERROR, 409: ERROR},
    )
    def get(self, request: Request, id: int) -> HttpResponse:  # noqa: A002 (the path's name, as the API's others)
        document = packages.sbom(_image(request, id), request.query_params.get("format", ""))
        response = HttpResponse(document.body, content_type=document.content_type)
        response["Content-Disposition"] = f'attachment; filename="{document.filename}"'
        return response
