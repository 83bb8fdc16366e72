"""GET /docs: Swagger UI on the app's own OpenAPI document, served by the app itself.

The page's script and stylesheet come from the ``swagger-ui-bundle`` package (PyPI),
served at ``/docs/<asset>``: no CDN, so the page works on a machine without internet.
The documents name no ``servers``, so Swagger UI sends "Try it out" requests to the
origin it loaded the document from: this same app, through the same routes, input
policy and authentication as any client (the grades setter's page loads without
credentials; trying ``POST /set`` needs its Basic auth, via the Authorize button).

NOTE: ``validatorUrl: null``: Swagger UI would otherwise send the document to an online
validator for its badge, a request to the internet from a page meant to work offline.
"""

from __future__ import annotations

import functools
import html
from pathlib import Path

import falcon
import falcon.asgi
from swagger_ui_bundle import swagger_ui_path

from web.common.openapi import DOCS_PATH, SPEC_PATH

__all__ = ["ASSETS", "DocsAssetResource", "DocsPageResource", "add_docs"]

ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
"""The files of the package the page loads, by name, with their Content-Type."""
ASSET_MAX_AGE_S = 24 * 3600
"""How long a browser keeps an asset: they change only with the package's version."""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - API</title>
<link rel="stylesheet" href="{docs}/swagger-ui.css">
<link rel="icon" type="image/png" href="{docs}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{docs}/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: "{spec}",
  dom_id: "#swagger-ui",
  validatorUrl: null,
  deepLinking: true,
  tryItOutEnabled: false,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
}});
</script>
</body>
</html>
"""


@functools.cache
def _asset(name: str) -> bytes:
    """An asset's bytes, read once per process (the bundle is about 1 MB)."""
    return (Path(str(swagger_ui_path)) / name).read_bytes()


class DocsPageResource:
    """GET /docs: the HTML page; the browser then loads the assets and the document."""

    def __init__(self, title: str):
        self._body = _PAGE.format(title=html.escape(title), docs=DOCS_PATH, spec=SPEC_PATH).encode()

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.data = self._body
        resp.content_type = falcon.MEDIA_HTML


class DocsAssetResource:
    """GET /docs/{name}: one of ASSETS; any other name is the usual JSON 404."""

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        content_type = ASSETS.get(name)
        if content_type is None:
            raise falcon.HTTPNotFound(description=f"{req.path}: no such file of the docs page")
        resp.data = _asset(name)
        resp.content_type = content_type
        resp.cache_control = [f"max-age={ASSET_MAX_AGE_S}"]


def add_docs(app: falcon.asgi.App[falcon.asgi.Request, falcon.asgi.Response], title: str) -> None:
    """Serve the docs page of the app whose document is titled ``title``."""
    app.add_route(DOCS_PATH, DocsPageResource(title))
    app.add_route(DOCS_PATH + "/{name}", DocsAssetResource())
