"""Bad build options are refused with the field named, before anything is created or queued."""

from __future__ import annotations

import pytest

from builds.models import Build
from tests.builds.build_helpers import source_from

URL = "/api/v1/builds/"
DOCKERFILE = "FROM busybox:1.35.0 AS base\nRUN echo base\nFROM base AS final\nRUN echo final\n"


@pytest.fixture
def source(repository):
    return source_from(repository, {"Dockerfile": DOCKERFILE})


@pytest.mark.parametrize(("options", "field", "message"), [
    ({"tags": ["Not A Tag"]}, "tags", "is not a valid image name"),
    ({"tags": ["ok:1", "bad:tag:x"]}, "tags", "is not a valid image name"),
    ({"memory_limit": "lots"}, "memory_limit", "is not a memory size"),
    ({"memory_limit": "1k"}, "memory_limit", "at least 6m"),
    ({"target": "nope"}, "target", "no stage named 'nope' (stages: base, final)"),
    ({"cpuset_cpus": "0-a"}, "cpuset_cpus", "is not a CPU set"),
    ({"cpu_shares": 1}, "cpu_shares", "greater than or equal to 2"),
    ({"secret_args": ["TOKEN"]}, "secret_args", "has no value in build_args"),
    ({"build_args": {"1BAD": "x"}}, "build_args", "is not a valid build arg name"),
    ({"dockerfile": "Missing.Dockerfile"}, "dockerfile", "There is no 'Missing.Dockerfile'"),
    ({"timeout": 0}, "timeout", "greater than or equal to 1"),
    ({"secrets": {"TOKEN": "abc"}}, "secrets", "shorter than 4 bytes"),
    ({"secrets": {"bad name": "long-enough"}}, "secrets", "is not a secret name"),
    ({"secrets": {"BIG": "x" * (64 * 1024 + 1)}}, "secrets", "larger than 64 KiB"),
    ({"secrets": {f"S{n}": "long-enough" for n in range(21)}}, "secrets", "At most 20 secrets"),
    ({"secrets": {"TOKEN": "long-enough"}, "memory_limit": "64m"}, "secrets", "need BuildKit"),
    ({"secrets": {"TOKEN": "long-enough"}, "builder": "classic"}, "secrets", "need BuildKit"),
    ({"secrets": {"TOKEN": "long-enough"}, "build_args": {"TOKEN": "other-value"}, "secret_args": ["TOKEN"]},
     "secret_args", "both in secrets and in secret_args"),
    ({"cpuset_cpus": "0", "builder": "buildkit"}, "builder", "BuildKit ignores memory and CPU limits"),
    ({"builder": "kaniko"}, "builder", "is not a valid choice"),
])
def test_bad_options_are_400_naming_the_field(owner_api, source, options, field, message):
    response = owner_api.post(URL, {"source": source.pk, **options}, format="json")
    assert response.status_code == 400
    assert message in str(response.json()[field])
    assert not Build.objects.exists()


def test_an_unknown_or_someone_elses_source_is_400(owner_api, api_client, outsider, source):
    assert "no such source" in owner_api.post(URL, {"source": 999999}, format="json").json()["source"][0]
    api_client.force_authenticate(outsider)
    response = api_client.post(URL, {"source": source.pk}, format="json")
    assert response.status_code == 400
    assert not Build.objects.exists()


def test_malformed_json_is_400(owner_api):
    response = owner_api.post(URL, data="{", content_type="application/json")
    assert response.status_code == 400


def test_anonymous_is_401(api_client, db):
    assert api_client.get(URL).status_code == 401


def test_outsiders_get_404_on_a_build(owner_api, api_client, outsider, source, owner):
    build = Build.objects.create(owner=owner, repository=source.repository, source=source)
    api_client.force_authenticate(outsider)
    for suffix in ("", "log/"):
        assert api_client.get(f"{URL}{build.pk}/{suffix}").status_code == 404
    for suffix in ("cancel/", "rebuild/", "debug/"):
        assert api_client.post(f"{URL}{build.pk}/{suffix}", {"command": "id"}, format="json").status_code == 404
    assert Build.objects.count() == 1


def test_debugging_a_build_that_did_not_fail_is_409(owner_api, source, owner):
    build = Build.objects.create(owner=owner, repository=source.repository, source=source, status="succeeded")
    response = owner_api.post(f"{URL}{build.pk}/debug/", {"command": "id"}, format="json")
    assert response.status_code == 409
    assert "Only a failed build" in response.json()["detail"]


def test_cancelling_a_finished_build_is_409(owner_api, source, owner):
    build = Build.objects.create(owner=owner, repository=source.repository, source=source, status="failed")
    assert owner_api.post(f"{URL}{build.pk}/cancel/").status_code == 409


def test_the_log_refuses_a_negative_offset(owner_api, source, owner):
    build = Build.objects.create(owner=owner, repository=source.repository, source=source)
    assert owner_api.get(f"{URL}{build.pk}/log/?offset=-1").status_code == 400
    assert owner_api.get(f"{URL}{build.pk}/log/?offset=x").status_code == 400


def test_the_list_runs_the_same_few_queries_for_many_builds(owner_api, source, owner, django_assert_max_num_queries):
    from builds.models import BuildStep, Image

    for n in range(30):
        build = Build.objects.create(owner=owner, repository=source.repository, source=source, status="succeeded")
        BuildStep.objects.create(build=build, number=1, instruction="FROM busybox:1.35.0",
                                 started_at=build.queued_at)
        Image.objects.create(owner=owner, image_id=f"sha256:{n:064x}", build=build)
    with django_assert_max_num_queries(8):
        response = owner_api.get(URL)
    assert len(response.json()["results"]) == 30
    assert all(item["image"] for item in response.json()["results"])


def test_a_secret_arg_the_dockerfile_reads_as_an_arg_is_refused_and_its_value_not_echoed(owner_api, repository):
    source = source_from(repository, {"Dockerfile": "FROM busybox:1.35.0\nARG TOKEN\nRUN test -n \"$TOKEN\"\n"})
    response = owner_api.post(URL, {"source": source.pk, "build_args": {"TOKEN": "hunter2-value"},
                                    "secret_args": ["TOKEN"]}, format="json")
    assert response.status_code == 400
    assert "RUN --mount=type=secret,id=TOKEN" in response.json()["secret_args"][0]
    assert "hunter2-value" not in response.content.decode()
    assert not Build.objects.exists()


def test_the_builder_is_chosen_when_the_build_is_queued_and_secrets_are_never_answered(owner_api, source):
    limited = owner_api.post(URL, {"source": source.pk, "memory_limit": "64m"}, format="json").json()
    assert (limited["requested_builder"], limited["builder"]) == ("auto", "classic")
    assert "memory or CPU limits" in limited["builder_reason"]
    secret = owner_api.post(URL, {"source": source.pk, "secrets": {"TOKEN": "s3cret-value"}}, format="json")
    assert secret.status_code == 202
    body = secret.json()
    assert (body["builder"], body["builder_reason"], body["secret_names"]) == ("buildkit", "", ["TOKEN"])
    assert "s3cret-value" not in secret.content.decode() and "secrets" not in body
    rebuilt = Build.objects.get(pk=body["id"])
    assert rebuilt.secrets and "s3cret-value" in rebuilt.secrets  # decrypted by the field, for the worker only


def test_the_list_writes_each_build_as_the_detail_does(owner_api, source, owner):
    from datetime import timedelta

    from builds.models import BuildNode, BuildStep, Image
    from console.constants import JobStatus

    node = BuildNode.objects.create(name="n1", engine_url="tcp://10.0.0.9:2375", queue="builds.n1")
    done = Build.objects.create(owner=owner, repository=source.repository, source=source, status="failed",
                                tags=["app:1"], build_args={"A": "1", "T": "****"}, secret_args=["T"], node=node,
                                last_good_layer="sha256:" + "c" * 64, failed_step=2, labels={"k": "v"})
    BuildStep.objects.create(build=done, number=1, instruction="FROM busybox:1.35.0", started_at=done.queued_at,
                             finished_at=done.queued_at + timedelta(milliseconds=1500), cached=True)
    BuildStep.objects.create(build=done, number=2, instruction="RUN false", started_at=done.queued_at,
                             stage="build")
    Image.objects.create(owner=owner, image_id="sha256:" + "d" * 64, build=done)
    newer = Image.objects.create(owner=owner, image_id="sha256:" + "e" * 64, build=done)
    # Two waiting builds: the second is second in its owner's queue.
    waiting = [Build.objects.create(owner=owner, repository=source.repository, source=source,
                                    status=JobStatus.QUEUED) for _ in range(2)]
    listed = {row["id"]: row for row in owner_api.get(URL).json()["results"]}
    for build in (done, *waiting):
        assert listed[build.pk] == owner_api.get(f"{URL}{build.pk}/").json()
    assert listed[done.pk]["image"] == newer.pk and listed[done.pk]["node"] == "n1"
    assert [listed[build.pk]["queue_position"] for build in waiting] == [1, 2]
