"""``/docs`` that works offline: Swagger UI from the ``swagger-ui-bundle`` package.

FastAPI's own ``/docs`` and ``/redoc`` load their scripts from a CDN, so they
are blank without Internet access. Here ``/docs`` is Swagger UI with its
script, style and icon served by the service itself under
``/docs-assets/``; ``/redoc`` is not served.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs-assets"


def mount_offline_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and its assets from this service (app built with no docs)."""
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """Swagger UI for this service's OpenAPI schema."""
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            # No badge from validator.swagger.io: nothing leaves the machine.
            swagger_ui_parameters={"validatorUrl": None},
        )
