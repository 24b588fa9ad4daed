"""HTTP clients bound to the in-process app, from a chosen client address."""

from __future__ import annotations

import httpx
from fastapi import FastAPI


def client_from(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://ruta.test")
