from __future__ import annotations


def test_it_serves_an_openapi_3_schema_describing_the_api(client, db):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path in ["/api/v1/auth/signup/", "/api/v1/auth/token/", "/api/v1/auth/me/", "/api/v1/auth/tokens/",
                 "/api/v1/auth/tokens/{id}/"]:
        assert path in schema["paths"], path
    assert "accessToken" in schema["components"]["securitySchemes"]
