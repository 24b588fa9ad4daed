"""The interactive docs work on a closed network: every file they load is Ruta's own."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import swagger_ui_bundle

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}


async def test_swagger_ui_loads_only_files_that_ruta_serves(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    html = page.text
    linked = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    redirect = await client.get("/docs/oauth2-redirect")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "://" not in html, "the page names another host"
    assert "'/openapi.json'" in html
    assert sorted(linked) == [
        "/docs/assets/favicon-32x32.png",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
    ]
    folder = Path(str(swagger_ui_bundle.swagger_ui_path))
    for url in linked:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"] == MEDIA_TYPES[Path(url).suffix], url
        assert asset.content == (folder / Path(url).name).read_bytes(), url
        assert "no-store" not in asset.headers.get("cache-control", "")
    assert redirect.status_code == 200
    assert "://" not in redirect.text
    assert (await client.get("/openapi.json")).status_code == 200


async def test_only_the_files_the_page_needs_are_served_and_redoc_is_off(
    client: httpx.AsyncClient,
) -> None:
    others = [
        await client.get(path)
        for path in (
            "/docs/assets/index.html",
            "/docs/assets/swagger-initializer.js",
            "/docs/assets/..%2F..%2F__init__.py",
            "/redoc",
        )
    ]
    assert [r.status_code for r in others] == [404, 404, 404, 404]
    assert all(r.headers["content-type"] == "application/problem+json" for r in others)
