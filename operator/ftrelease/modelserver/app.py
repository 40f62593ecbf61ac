"""The OpenAI-compatible HTTP apps. The serving app: completions and chat completions (plain and
SSE streaming), models, health, readiness, metrics, and, only when enabled, vLLM's runtime LoRA
API. The admin app, on its own port: review samples (read with a limit, or cleared). Every
failure is answered in the OpenAI error shape and counted; none leaks a traceback. The server's
state and request checks are in server.py, one request's run in responses.py."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ftrelease.checks.http import ApiError, Guard, create_admin_app, serve_all

from .adapters import RuntimeAdapters
from .requests import RequestProblem, parse
from .responses import Run
from .server import Server

log = logging.getLogger(__name__)


def _guard(server: Server) -> dict:
    return {
        "metrics": server.metrics,
        "labels": server.unresolved_labels,
        "max_body_bytes": server.config.max_body_bytes,
    }


def create_app(server: Server) -> FastAPI:
    app = FastAPI(title="finetune-release model server")
    c = server.config
    app.add_middleware(Guard, **_guard(server))

    @app.on_event("startup")
    async def _load() -> None:
        threading.Thread(target=server.load, name="load", daemon=True).start()

    @app.get("/health")
    async def health() -> JSONResponse:
        # --health-when-loaded: as vLLM's, healthy only once serving (the vLLM stand-in's).
        loading = c.health_when_loaded and not server.ready
        return JSONResponse({"status": "loading" if loading else "ok"}, 503 if loading else 200)

    @app.get("/ready")
    async def ready() -> JSONResponse:
        return JSONResponse(
            {"ready": server.ready, "reason": server.reason},
            status_code=200 if server.ready else 503,
        )

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(
            generate_latest(server.metrics.registry), media_type=CONTENT_TYPE_LATEST
        )

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {
                    "id": name,
                    "object": "model",
                    "owned_by": c.release or "finetune",
                    "parent": None if adapter is None else c.base_name,
                }
                for name, adapter in server.models.items()
            ],
        }

    async def read_body(request: Request) -> bytes:
        raw = await request.body()
        if len(raw) > c.max_body_bytes:
            raise ApiError(
                413, f"request body over {c.max_body_bytes} bytes", code="body_too_large"
            )
        return raw

    async def serve(request: Request, chat: bool) -> Any:
        started = time.monotonic()
        labels = server.unresolved_labels()
        try:
            raw = await read_body(request)
            try:
                body = parse(raw, chat)
            except RequestProblem as problem:
                raise ApiError(400, problem.message, param=problem.param) from None
            adapter = server.resolve(body.model)
            labels = server.labels(body.model, adapter)
            choices = server.generations(body, adapter)
            if c.fault_error_rate and server.faults.random() < c.fault_error_rate:
                raise ApiError(500, "injected fault", type_="server_error", code="injected_fault")
            sample: dict[str, Any] = (
                {"messages": [m.model_dump(exclude_none=True) for m in body.messages]}
                if chat
                else {"prompt": body.prompt}
            )
            usage = bool(body.stream_options and body.stream_options.include_usage)
            run = Run(server, choices, labels, sample, chat, started, usage)
            run.start()
        except ApiError as exc:
            server.metrics.requests.labels(**labels, code=str(exc.status)).inc()
            return exc.response()
        if body.stream:
            return StreamingResponse(run.stream(), media_type="text/event-stream")
        return await run.complete(request.is_disconnected)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        return await serve(request, chat=False)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        return await serve(request, chat=True)

    if c.enable_runtime_lora:  # as vLLM: the routes exist only when enabled
        adapters = RuntimeAdapters(server)

        async def adapter_call(action, request: Request) -> Any:
            try:
                return PlainTextResponse(await action(await read_body(request)))
            except ApiError as exc:
                return exc.response()

        @app.post("/v1/load_lora_adapter")
        async def load_lora(request: Request) -> Any:
            return await adapter_call(adapters.load, request)

        @app.post("/v1/unload_lora_adapter")
        async def unload_lora(request: Request) -> Any:
            return await adapter_call(adapters.unload, request)

    return app


def serve_forever(server: Server, host: str, port: int) -> None:
    """The serving app, and the admin app on config.admin_port if set, in one event loop."""
    apps = [(create_app(server), port)]
    if server.config.admin_port:
        apps.append((create_admin_app(server.samples, _guard(server)), server.config.admin_port))
    serve_all(apps, host)
