"""The interactive API docs (Swagger UI) with its files served by Ruta itself: ministries'
networks are often closed, and a CDN is one more party that would see who reads the docs.
The files come from the pinned swagger-ui-bundle-v2 package (Apache-2.0, the same bytes
as swagger-ui-dist on npm). ReDoc is off: one interactive page is enough."""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from fastapi import Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

from service.core.errors import NotFound
from service.core.http import Router

DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
ASSETS_URL = "/docs/assets"

# The only files served, with their media types: nothing else of the package's folder.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
_FOLDER = Path(str(swagger_ui_bundle.swagger_ui_path))
# The files change only with the package: caches may keep them for a day.
_CACHE = "public, max-age=86400"

router = Router(include_in_schema=False)


@router.get(DOCS_URL)
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI on Ruta's OpenAPI document, every file it loads from Ruta."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    assets = f"{root}{ASSETS_URL}"
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{assets}/swagger-ui-bundle.js",
        swagger_css_url=f"{assets}/swagger-ui.css",
        swagger_favicon_url=f"{assets}/favicon-32x32.png",
        oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_URL}",
    )


@router.get(OAUTH2_REDIRECT_URL)
async def swagger_ui_oauth2_redirect() -> HTMLResponse:
    """Where Swagger UI's OAuth2 flows come back to."""
    return get_swagger_ui_oauth2_redirect_html()


@router.get(f"{ASSETS_URL}/{{name}}")
async def swagger_ui_asset(name: str) -> FileResponse:
    """One of Swagger UI's files."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise NotFound("No such documentation file.")
    return FileResponse(_FOLDER / name, media_type=media_type, headers={"Cache-Control": _CACHE})
