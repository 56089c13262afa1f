"""The lists' text search reads the trigram indexes of console/search_indexes.py on PostgreSQL: each index is made
by the migrations, and the planner takes it for the very SQL that Django writes for the search (an index on a
slightly different expression would be made and never read)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.http import QueryDict

from builds.filters import BuildFilter, ImageFilterSet
from builds.models import Build, Image
from fleet.filters import DeploymentFilter
from fleet.models import Deployment
from tests.console.test_list_pages_queries import make_builds, make_images, make_repository, make_source

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def plan(queryset) -> str:
    """The plan of the search alone: unordered and of every owner, so that no other index (the owner's, the primary
    key's for the order) could answer it instead."""
    sql, params = queryset.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        # A handful of rows: left to itself the planner reads them all; forbidden to, it takes a usable index.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_image_build_and_deployment_searches_read_their_indexes(owner):
    if connection.vendor != "postgresql":
        pytest.skip("trigram indexes are PostgreSQL's")
    repository = make_repository(owner, "app")
    make_images(owner, 3, repository, name="web", labels={"team": "front"})
    make_builds(owner, 3, make_source(repository), name="web")

    images = ImageFilterSet(QueryDict("q=web:1"))
    assert images.is_valid()
    image_plan = plan(images.filter_queryset(Image.objects.all()))
    assert "builds_image_tags_search" in image_plan and "builds_image_labels_search" in image_plan, image_plan

    builds = BuildFilter(QueryDict("q=web:1"), queryset=Build.objects.all())
    assert builds.is_valid()
    build_plan = plan(builds.qs)
    assert "builds_build_tags_search" in build_plan, build_plan
    assert "builds_repository" not in build_plan, build_plan  # the repository's name was looked up by itself

    deployments = DeploymentFilter(QueryDict("q=web"), queryset=Deployment.objects.all())
    assert deployments.is_valid()
    deployment_plan = plan(deployments.qs)
    assert "fleet_deployment_name_search" in deployment_plan, deployment_plan
    assert "fleet_deployment_image_search" in deployment_plan, deployment_plan
