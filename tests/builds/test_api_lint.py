"""POST /api/v1/lint/ against the real hadolint."""

from __future__ import annotations

import json

import pytest

from console.accounts import services

URL = "/api/v1/lint/"

BOOK = """\
FROM node:11.11.0
LABEL maintainer="someone@example.com"
USER root
ENV APP=/app
RUN apt-get -y update
ADD . /app
WORKDIR /app
RUN npm install
CMD ["node", "index.js"]
"""


def test_it_answers_the_findings_sorted_by_line(owner_api):
    response = owner_api.post(URL, {"dockerfile": BOOK}, format="json")

    assert response.status_code == 200
    findings = response.json()
    assert all(list(item) == ["rule", "line", "severity", "message"] for item in findings)
    assert [item["line"] for item in findings] == sorted(item["line"] for item in findings)
    rules = {(item["rule"], item["line"]) for item in findings}
    assert {("DL3002", 3), ("CONSOLE004", 5), ("DL3020", 6), ("CONSOLE005", 6)} <= rules
    assert {item["severity"] for item in findings} <= {"error", "warning", "info", "style"}


def test_it_accepts_a_personal_access_token(api_client, owner):
    _, raw = services.create_access_token(owner, "lint")

    response = api_client.post(URL, {"dockerfile": "FROM busybox:1.35.0\nUSER 1000\n"}, format="json",
                               HTTP_AUTHORIZATION=f"Token {raw}")

    assert response.status_code == 200
    assert response.json() == []


def test_it_refuses_anonymous_callers(api_client, db):
    response = api_client.post(URL, {"dockerfile": BOOK}, format="json")

    assert response.status_code == 401


def test_it_refuses_other_methods(owner_api):
    assert owner_api.get(URL).status_code == 405
    assert owner_api.put(URL, {"dockerfile": BOOK}, format="json").status_code == 405


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Send the Dockerfile's text."),
        ({"dockerfile": ""}, "The Dockerfile is empty."),
        ({"dockerfile": " \n\t\n"}, "The Dockerfile is empty."),
        ({"dockerfile": None}, "This field may not be null."),
        ({"dockerfile": 12}, "Must be the Dockerfile's text (a string)."),
        ({"dockerfile": True}, "Must be the Dockerfile's text (a string)."),
        ({"dockerfile": ["FROM busybox:1.35.0"]}, "Must be the Dockerfile's text (a string)."),
        ({"dockerfile": "FROM busybox:1.35.0\x00\x00"}, "Null characters are not allowed."),
        ({"dockerfile": "FROM busybox:1.35.0\n" + "#" * (1024 * 1024)}, "larger than 1048576 bytes"),
    ],
)
def test_it_refuses_a_missing_blank_non_text_or_oversized_dockerfile(owner_api, body, message):
    response = owner_api.post(URL, body, format="json")

    assert response.status_code == 400
    assert message in response.json()["dockerfile"][0]


def test_a_body_that_is_not_an_object_is_refused(owner_api):
    response = owner_api.post(URL, json.dumps(["FROM busybox"]), content_type="application/json")

    assert response.status_code == 400
    assert "non_field_errors" in response.json()


def test_a_body_larger_than_the_upload_limit_is_refused(owner_api):
    response = owner_api.post(URL, {"dockerfile": "#" * (3 * 1024 * 1024)}, format="json")

    assert response.status_code == 400
    assert "larger than" in response.json()["dockerfile"][0]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("FROM busybox:1.35.0\nRUN true\nCOMPILE it\n", 3, "does not parse at line 3"),
        ("FROM busybox:1.35.0\nRUN echo \x01\x02\x03\n", 2, "not text"),
        ("# nothing but a comment\n", 1, "empty"),
    ],
)
def test_a_dockerfile_that_does_not_parse_is_a_400_naming_the_line(owner_api, text, line, message):
    response = owner_api.post(URL, {"dockerfile": text}, format="json")

    assert response.status_code == 400
    assert response.json()["line"] == line
    assert message in response.json()["detail"]


def test_it_is_described_in_the_openapi_schema(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    operation = schema["paths"]["/api/v1/lint/"]["post"]
    assert operation["operationId"] == "lint_dockerfile"
    assert "get" not in schema["paths"]["/api/v1/lint/"]
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["type"] == "array"
    finding = schema["components"]["schemas"][ok["items"]["$ref"].rsplit("/", 1)[-1]]
    assert set(finding["properties"]) == {"rule", "line", "severity", "message"}
    assert "400" in operation["responses"]
    request = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert schema["components"]["schemas"][request]["required"] == ["dockerfile"]
