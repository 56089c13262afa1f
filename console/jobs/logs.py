"""The one shape of every job's `.../log/?offset=N` endpoint: builds, pushes, pulls, deployments, git imports.

The answer is `{"lines": [...], "next_offset": N, "finished": bool}`: the lines from `offset` on, the offset to
ask for next, and whether more may come. Readers poll with `next_offset` until `finished`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from console.jobs.lifecycle import Job, read_log

# What a deployment's log has always answered for an offset that is not a number (its negative offsets read from
# the start); the other jobs' logs answer a field error for both.
NOT_A_NUMBER = "offset is a whole number."


class LogQuerySerializer(serializers.Serializer):
    offset = serializers.IntegerField(required=False, default=0, min_value=0)


class LogSerializer(serializers.Serializer):
    lines = serializers.ListField(child=serializers.CharField())
    next_offset = serializers.IntegerField()
    finished = serializers.BooleanField()


def log_schema(**kwargs: Any):
    """The OpenAPI description of a log action (its `offset` parameter and answer, plus any `responses` given)."""
    responses = {200: LogSerializer, **kwargs.pop("responses", {})}
    return extend_schema(
        parameters=[OpenApiParameter("offset", int, description="The first line to return.")],
        responses=responses, **kwargs)


def log_response(job: Job, query_params, *, lenient_offset: bool = False) -> Response:
    """The job's log from the query's `offset` on. `lenient_offset` keeps a deployment's log as it was: a
    negative offset reads from the start, a word is a 400 with `detail`; otherwise either is a 400 on `offset`."""
    if lenient_offset:
        try:
            offset = max(0, int(query_params.get("offset", 0)))
        except (TypeError, ValueError):
            return Response({"detail": NOT_A_NUMBER}, status=status.HTTP_400_BAD_REQUEST)
    else:
        query = LogQuerySerializer(data=query_params)
        query.is_valid(raise_exception=True)
        offset = query.validated_data["offset"]
    return Response(asdict(read_log(job, offset)))
