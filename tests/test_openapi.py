"""The published contract (openapi/openapi.json) matches what the app serves."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI

SPEC = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def test_published_openapi_matches_the_app(app: FastAPI) -> None:
    published = json.loads(SPEC.read_text())
    assert published == json.loads(json.dumps(app.openapi())), (
        "openapi/openapi.json is stale: run `ruta openapi`"
    )


def test_operation_ids_are_stable_and_errors_are_declared(app: FastAPI) -> None:
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            tag = operation["tags"][0]
            assert operation["operationId"].startswith(f"{tag}-"), (method, path)
            if path.startswith("/v1/") and path != "/v1/auth/token":
                assert "401" in operation["responses"], (method, path)
