"""The guard of every runtime's checker (checks/http.py Guard) around a failure no valid request can cause:
an endpoint that raises. Real Starlette and the real Guard in process; the endpoint raising is
the one stand-in, since every path of the real server validates its input first."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from ftrelease.checks.http import Guard
from ftrelease.checks.metrics import ServerMetrics

pytestmark = pytest.mark.serve


def test_an_unhandled_failure_is_an_openai_shaped_500_counted_without_a_traceback():
    metrics = ServerMetrics()
    labels = {"release": "bot", "revision": "r1", "model": "", "adapter": ""}
    app = FastAPI()
    app.add_middleware(Guard, metrics=metrics, labels=lambda: labels, max_body_bytes=1000)

    @app.post("/v1/chat/completions")
    async def broken() -> None:
        raise RuntimeError("secret internal detail")

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/v1/chat/completions", json={})

    response = asyncio.run(call())
    assert response.status_code == 500
    assert response.json() == {
        "error": {"message": "internal error", "type": "server_error", "param": None, "code": None}
    }
    assert "secret" not in response.text and "Traceback" not in response.text
    assert metrics.requests.labels(**labels, code="500")._value.get() == 1
