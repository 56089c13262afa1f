"""The images API: the caller's image records, their layers and files, the layer tree, sync, tag and remove."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from builds.api.compare import ComparisonSerializer
from builds.api.serializers import (
    ImageSerializer,
    ImageTagSerializer,
    LayerFileSerializer,
    LayerFilesQuerySerializer,
    SyncResultSerializer,
    TreeNodeSerializer,
)
from builds.constants import ImageOrigin
from builds.filters import ImageFilterSet
from builds.models import Image
from builds.services import analysis, compare, images
from builds.services.options import OptionError
from console.api import CREATED_PARAMETERS, ErrorSerializer
from console.jobs.logs import log_response, log_schema
from console.pagination import newest_first

ERROR = OpenApiResponse(ErrorSerializer, description="Refused; `detail` (or the field) says why.")


class ImageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                   viewsets.GenericViewSet):
    """The images the caller's builds, pulls and syncs recorded."""

    serializer_class = ImageSerializer

    def get_queryset(self):
        return images.images_for(self.request.user)

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, description="Part of a tag, a label's key or a label's value."),
            OpenApiParameter("label", str, many=True, description="key=value or key; repeat to require several."),
            OpenApiParameter("tag", str, description="name:tag, or a name for any of its tags."),
            OpenApiParameter("repository", int, description="The id of one of your repositories."),
            OpenApiParameter("origin", str, enum=ImageOrigin.values, description="How it was recorded."),
            OpenApiParameter("fixable_vulnerability", str, enum=["true", "false"],
                             description="true: images with a vulnerability that a newer version of a package "
                                         "fixes (README \"Vulnerabilities, offline\"); false: images with none."),
            *CREATED_PARAMETERS,
        ],
        responses={200: ImageSerializer(many=True), 400: ERROR},
    )
    def list(self, request: Request, *args, **kwargs) -> Response:
        search = ImageFilterSet(request.query_params)
        if not search.is_valid():
            return Response(search.form.error_detail(), status=status.HTTP_400_BAD_REQUEST)
        matching = newest_first(search.filter_queryset(Image.objects.for_user(request.user)))
        # The page's ids first, then the rows of just those (list_rows: two queries for the page).
        page = self.paginate_queryset(matching.values_list("pk", flat=True))
        return self.get_paginated_response(images.list_rows(newest_first(Image.objects.filter(pk__in=page))))

    @extend_schema(responses={204: None, 409: ERROR})
    def destroy(self, request: Request, *args, **kwargs) -> Response:
        image = self.get_object()
        # ImageInUse is a 409, answered by console.api's handler (as ImageGone is for a tag).
        images.remove_image(image)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: SyncResultSerializer})
    @action(detail=False, methods=["post"])
    def sync(self, request: Request) -> Response:
        result = images.sync_images(request.user)
        return Response({"recorded": [image.pk for image in result.recorded], "forgotten": result.forgotten})

    # A tree, not a list: its roots and their children in one answer.
    @extend_schema(responses={200: TreeNodeSerializer(many=True)})
    @action(detail=False, methods=["get"], pagination_class=None)
    def tree(self, request: Request) -> Response:
        return Response(images.image_tree(request.user))

    @extend_schema(
        parameters=[OpenApiParameter("base", int, required=True, description="The id of one of your images."),
                    OpenApiParameter("head", int, required=True, description="The id of another (or the same).")],
        responses={200: ComparisonSerializer, 400: ERROR, 404: ERROR},
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def compare(self, request: Request) -> Response:
        """What differs from the base image to the head: layers, config, files and packages."""
        return Response(compare.compare_for_user(request.user, request.query_params.get("base"),
                                                 request.query_params.get("head")))

    @extend_schema(request=None, responses={200: ImageSerializer, 202: ImageSerializer})
    @action(detail=True, methods=["post"])
    def analyse(self, request: Request, pk: str | None = None) -> Response:
        image = self.get_object()
        if analysis.analysis_is_current(image):
            return Response(ImageSerializer(image).data)
        analysis.request_analysis(image)
        return Response(ImageSerializer(image).data, status=status.HTTP_202_ACCEPTED)

    @log_schema(responses={404: ERROR})
    @action(detail=True, methods=["get"], url_path="analysis/log")
    def analysis_log(self, request: Request, pk: str | None = None) -> Response:
        """The log of the image's latest analysis run, as every job's log answers."""
        image = self.get_object()
        if image.analysis is None:
            return Response({"detail": "The image has not been analysed: ask for its analysis first."},
                            status=status.HTTP_404_NOT_FOUND)
        return log_response(image.analysis, request.query_params)

    @extend_schema(request=ImageTagSerializer, responses={200: ImageSerializer, 400: ERROR, 409: ERROR})
    @action(detail=True, methods=["post"])
    def tag(self, request: Request, pk: str | None = None) -> Response:
        image = self.get_object()
        body = ImageTagSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            image = images.tag_image(image, body.validated_data["repository"], body.validated_data["tag"])
        except OptionError as exc:
            field = "repository" if exc.field in ("tags", "repository") else exc.field
            return Response({field: [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(ImageSerializer(self.get_queryset().get(pk=image.pk)).data)

    @extend_schema(
        parameters=[OpenApiParameter("path", str, description="Only what is under this folder.")],
        responses={200: LayerFileSerializer(many=True), 400: ERROR, 409: ERROR},
    )
    @action(detail=True, methods=["get"], url_path=r"layers/(?P<index>[^/.]+)/files")
    def files(self, request: Request, pk: str | None = None, index: str = "") -> Response:
        image = self.get_object()
        query = LayerFilesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        layer = image.layers.filter(index=int(index)).first() if index.isdigit() and len(index) < 7 else None
        if layer is None:
            count = image.layers.count()
            return Response({"detail": f"The image has no layer {index!r}: its layers are 0 to {count - 1}."},
                            status=status.HTTP_400_BAD_REQUEST)
        try:
            folder = analysis.clean_folder(query.validated_data["path"])
            files = analysis.layer_files(image, layer, folder)
        except analysis.BadLayerPath as exc:
            return Response({"path": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        page = self.paginate_queryset(files)
        return self.get_paginated_response(page)
