"""The OpenAPI document and the docs page, which must work without the internet."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from openapi_spec_validator import validate

from tests.helpers import API

# Routes under /api/v1 that are the documentation itself, not the API it documents.
_DOC_ENDPOINTS = {"api-docs.openapi_json", "api-docs.openapi_swagger_ui", "docs_asset", "static"}
_HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
def spec(client) -> dict:
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.json


def test_the_document_is_valid_openapi_3(spec):
    assert spec["openapi"].startswith("3.")
    validate(spec)


def _api_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API + "/") or rule.endpoint in _DOC_ENDPOINTS:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        routes |= {(path, method.lower()) for method in rule.methods & _HTTP_METHODS}
    return routes


def test_every_api_route_is_documented(app, spec):
    routes = _api_routes(app)
    assert len(routes) >= 9
    documented = {
        (path, method)
        for path, operations in spec["paths"].items()
        for method in operations
        if method.upper() in _HTTP_METHODS
    }
    assert routes <= documented, routes - documented


def test_the_bearer_scheme_is_declared_and_required_by_every_operation(spec):
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "Agency API key or staff token",
    }
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method.upper() in _HTTP_METHODS:
                assert operation.get("security") == [{"bearerAuth": []}], (method, path)


def test_every_post_documents_the_idempotency_key_header(spec):
    for path, operations in spec["paths"].items():
        if "post" not in operations:
            continue
        headers = [
            p["name"] for p in operations["post"].get("parameters", []) if p["in"] == "header"
        ]
        assert "Idempotency-Key" in headers, path


def test_the_input_and_output_schemas_are_apart(spec):
    """A client reads `id`, `stage` and `history` but can never send them."""
    schemas = spec["components"]["schemas"]
    submit = spec["paths"][f"{API}/referrals"]["post"]
    body_ref = submit["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = schemas[body_ref.rsplit("/", 1)[-1]]
    assert {"procedure", "patient"} <= set(body["required"])
    assert not {"id", "stage", "history", "owner", "agency"} & set(body["properties"])
    out_ref = submit["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    out = schemas[out_ref.rsplit("/", 1)[-1]]
    assert {"id", "stage", "history", "time_in_stages"} <= set(out["properties"])


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name) and tag in {"script", "link", "img", "iframe"}:
                self.urls.append(values[name])


def test_the_docs_page_loads_with_every_asset_served_by_this_app(client):
    page = client.get(f"{API}/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    parser = _Assets()
    parser.feed(page.get_data(as_text=True))
    assert len(parser.urls) >= 3
    base = f"http://localhost{API}/docs"
    for url in parser.urls:
        absolute = urljoin(base, url)
        parts = urlsplit(absolute)
        assert parts.netloc == "localhost", f"{url} is fetched from another host"
        with client.get(parts.path) as asset:
            assert asset.status_code == 200, url
            assert asset.get_data(), url


def test_the_docs_page_points_at_this_apps_openapi_document(client):
    html = client.get(f"{API}/docs").get_data(as_text=True)
    assert f'url: "{API}/openapi.json"' in html
    for external in ("cdn.jsdelivr", "unpkg.com", "cdnjs", "googleapis"):
        assert external not in html


def test_a_missing_docs_asset_is_a_404_problem(client):
    response = client.get(f"{API}/docs-assets/nope.js")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_every_operation_documents_the_rate_limit_answer_and_its_headers(spec):
    operations = [
        operation
        for item in spec["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "responses" in operation
    ]
    assert operations
    assert all(
        operation["responses"]["429"] == {"$ref": "#/components/responses/TOO_MANY_REQUESTS"}
        for operation in operations
    )
    refused = spec["components"]["responses"]["TOO_MANY_REQUESTS"]
    assert set(refused["headers"]) == {
        "Retry-After",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
    }
    assert "application/problem+json" in refused["content"]
