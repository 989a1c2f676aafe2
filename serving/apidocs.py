"""The API's interactive documentation at /docs: Swagger UI and its assets, all from the hub's own origin."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

__all__ = ["STATIC", "install"]

# Swagger UI (vendored, with its licences: swagger-ui/VERSION), its starter script and the Data Docs stylesheet.
STATIC = Path(__file__).parent / "static" / "docs"

# FastAPI's own page loads Swagger UI from a public CDN and starts it with an inline script; neither passes the
# hub's Content-Security-Policy (serving.guard), so the page is this one.
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}: API documentation</title>
<link rel="stylesheet" href="/static/docs/swagger-ui/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi="{openapi}"></div>
<noscript><p>The interactive documentation needs JavaScript. The OpenAPI document is at
<a href="{openapi}">{openapi}</a>.</p></noscript>
<script src="/static/docs/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/docs/swagger-init.js"></script>
</body>
</html>
"""


def install(app) -> None:
    """Serve /docs and /static/docs on `app`, a FastAPI app made with `docs_url=None, redoc_url=None`. ReDoc is
    not served: its bundle writes inline styles, which the policy refuses."""
    app.mount("/static/docs", StaticFiles(directory=STATIC), name="docs-static")
    page = _PAGE.format(title=html.escape(app.title), openapi=html.escape(app.openapi_url))

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(page)
