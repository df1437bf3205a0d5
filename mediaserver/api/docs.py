"""The API's interactive documentation, served from this machine: no CDN, nothing fetched.

``/docs`` is Swagger UI and ``/redoc`` ReDoc, both reading ``/openapi.json``.
Their JavaScript and CSS come from the ``fastapi-offline`` package (PyPI),
installed with the server, and are served under ``/docs/assets/``. The pages
need an API key like ``/openapi.json``: a browser asks for it (HTTP Basic,
any user name, the key as password) and then sends it along when the page
fetches the document. The assets are the published Swagger UI and ReDoc files
and need no key.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from mediaserver.api.auth import require_key

ASSETS_URL = "/docs/assets"


def assets_dir() -> Path:
    """The folder of the Swagger UI and ReDoc files shipped by ``fastapi-offline``."""
    return Path(str(files("fastapi_offline") / "static"))


def add_docs(app: FastAPI) -> None:
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")
    title = f"{app.title} API"

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(require_key)])
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=title,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            # Swagger UI would send the document to validator.swagger.io: off.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False, dependencies=[Depends(require_key)])
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=title,
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
