"""The HTTP edge every runtime's checker shares (the builtin server, the response checker):
OpenAI's error shape, the guard around every request, the admin app that serves review samples
apart from the serving port, and running apps side by side in one event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from .metrics import ServerMetrics
from .samples import SampleBuffer

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer in OpenAI's error shape: {"error": {message, type, param, code}}."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type_
        self.param, self.code = param, code

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JSONResponse:
        headers = {"Retry-After": "1"} if self.status == 429 else None
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


class Guard:
    """Plain ASGI middleware (Starlette's BaseHTTPMiddleware would hide a client's disconnect
    from the endpoints): bodies over the limit are refused before they are read, and anything
    unhandled becomes an OpenAI-shaped 500 that is counted, never a plain-text one, a traceback
    or a dropped connection."""

    def __init__(
        self,
        app,
        metrics: ServerMetrics,
        labels: Callable[[], dict[str, str]],
        max_body_bytes: int,
    ) -> None:
        self.app, self.metrics, self.labels, self.limit = app, metrics, labels, max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            error = ApiError(413, f"request body over {self.limit} bytes", code="body_too_large")
            await error.response()(scope, receive, send)
            return
        started = False

        async def tracked(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("unhandled failure on %s", scope.get("path"))
            self.metrics.requests.labels(**self.labels(), code="500").inc()
            if not started:
                error = ApiError(500, "internal error", type_="server_error")
                await error.response()(scope, receive, send)


def create_admin_app(samples: SampleBuffer, guard: dict[str, Any]) -> FastAPI:
    """Apart from the serving port: what people review, not what clients call."""
    app = FastAPI(title="finetune-release admin")
    app.add_middleware(Guard, **guard)

    @app.get("/v1/samples")
    async def read(limit: int | None = None, flagged: bool = False) -> Any:
        """A random share of answers (sample_rate); `flagged=true`: every flagged one."""
        if limit is not None and limit < 1:
            return ApiError(400, "limit must be at least 1", param="limit").response()
        data = samples.items(limit, flagged)
        return {"object": "list", "sample_rate": samples.rate, "flagged": flagged, "data": data}

    @app.delete("/v1/samples")
    async def clear() -> dict[str, Any]:
        return {"cleared": samples.clear()}

    return app


def serve_all(apps: list[tuple[FastAPI, int]], host: str) -> None:
    """Each app on its port, in one event loop (uvloop's, and httptools' parser: uvicorn's
    fast path, a good part of what a proxy in front of every request costs)."""
    import uvicorn
    import uvloop

    servers = [
        uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", http="httptools")
        )
        for app, port in apps
    ]

    async def serve() -> None:
        await asyncio.gather(*(s.serve() for s in servers))

    uvloop.run(serve())
