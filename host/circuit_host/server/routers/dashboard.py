"""The dashboard's files at ``/dashboard`` and the API docs at ``/docs``, both served from the
package (no CDN): the dashboard is plain HTML, JavaScript modules and CSS; ``/docs`` is Swagger UI
from the vendored ``swagger-ui-dist``."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from ...dashboard import STATIC

# The dashboard runs only its own files: no inline script, no other origin, never in a frame. The
# API key it holds (sessionStorage) is only as safe as the page that can read it.
DASHBOARD_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
SWAGGER_ASSETS = "/dashboard/vendor/swagger-ui"


class DashboardFiles(StaticFiles):
    """Static files with the dashboard's security headers; ``index.html`` revalidated on every load."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(DASHBOARD_HEADERS)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


def install(app: FastAPI) -> None:
    """Serve ``/dashboard/`` and ``/docs``; ``app`` must be created with ``docs_url=None``."""

    @app.get("/dashboard", include_in_schema=False)
    async def dashboard_root() -> RedirectResponse:
        return RedirectResponse("/dashboard/", status_code=308)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_ASSETS}/favicon-32x32.png",
        )

    app.mount("/dashboard", DashboardFiles(directory=STATIC, html=True), name="dashboard")
