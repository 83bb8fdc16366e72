"""GET /docs and its assets in process (web.common.docs), on the grades setter's app: the
port whose every API route needs credentials, and whose page must not.

The page in a real browser, on every port of the running services, is
tests/test_api_docs_browser.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from swagger_ui_bundle import swagger_ui_path

from tests.app_client import AppClient


@pytest.fixture(scope="module")
def setter(loop):
    from actors.runtime.client import AsyncClient
    from web.grades.setter import BasicAuth, create_app

    # NOTE: never called: no request here reaches the storage actor
    store = AsyncClient("ipc:///nonexistent/grades-docs-page", 1.0, peer="storage actor")
    with AppClient(create_app(store, BasicAuth("user", "password")), loop) as client:
        yield client


@pytest.mark.parametrize("path", ["/docs", "/docs/"])
def test_the_page_needs_no_credentials_and_loads_only_from_the_app(setter, path):
    page = setter.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    sources = re.findall(r'(?:src|href|url:)\s*=?\s*"([^"]+)"', page.text)
    assert sorted(sources) == [
        "/docs/favicon-32x32.png",
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-ui.css",
        "/openapi.json",
    ]
    assert "validatorUrl: null" in page.text  # no request to an online validator
    assert "<title>grades setter - API</title>" in page.text
    assert setter.request("POST", "/set", json={"user_id": "u"}).status_code == 401


@pytest.mark.parametrize(
    "name, content_type",
    [
        ("swagger-ui-bundle.js", "application/javascript"),
        ("swagger-ui.css", "text/css"),
        ("favicon-32x32.png", "image/png"),
    ],
)
def test_the_assets_are_the_packages_files(setter, name, content_type):
    asset = setter.get(f"/docs/{name}")
    assert asset.status_code == 200
    assert asset.headers["content-type"].startswith(content_type)
    assert asset.content == (Path(str(swagger_ui_path)) / name).read_bytes()
    assert "max-age" in asset.headers["cache-control"]


@pytest.mark.parametrize("name", ["index.html", "swagger-ui.js.map", "..%2Fsetter.py", "nope"])
def test_any_other_file_is_a_json_404(setter, name):
    missing = setter.get(f"/docs/{name}")
    assert missing.status_code == 404
    assert set(missing.json) == {"error"} and "/docs/" in missing.json["error"]


def test_the_document_lists_the_page_beside_itself(setter):
    paths = setter.get("/openapi.json").json["paths"]
    assert paths["/docs"]["get"]["responses"]["200"]["content"] == {
        "text/html": {"schema": {"type": "string"}}
    }
    assert "/openapi.json" in paths


def test_try_it_out_fills_in_numbers_the_service_accepts(setter):
    """Swagger UI fills a body from the schema; 2^63-1 read by a browser is
    9223372036854776000, out of range, so int64 fields carry an example of 0."""
    fields = setter.get("/openapi.json").json["components"]["schemas"]["SetRequest"]["properties"]
    for name in ("postpaid_limit", "spp", "shipping_fee", "return_fee"):
        assert fields[name]["example"] == 0 and fields[name]["maximum"] == 2**63 - 1
