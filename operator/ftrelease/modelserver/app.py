"""The OpenAI-compatible HTTP app: completions and chat completions (plain and SSE streaming),
models, vLLM's runtime LoRA API, health, readiness, metrics and review samples. The server's
state and request checks are in server.py, one request's run and responses in responses.py."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .digest import DigestMismatch, verify
from .responses import Run
from .server import ApiError, Server


def create_app(server: Server) -> FastAPI:
    app = FastAPI(title="finetune-release model server")
    c = server.config

    @app.on_event("startup")
    async def _load() -> None:
        threading.Thread(target=server.load, name="load", daemon=True).start()

    @app.middleware("http")
    async def _limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > c.max_body_bytes:
            return ApiError(
                413, f"request body over {c.max_body_bytes} bytes", code="body_too_large"
            ).response()
        return await call_next(request)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

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

    @app.get("/v1/samples")
    async def samples() -> dict[str, Any]:
        return {
            "object": "list",
            "sample_rate": server.samples.rate,
            "data": server.samples.items(),
        }

    async def read_json(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > c.max_body_bytes:
            raise ApiError(
                413, f"request body over {c.max_body_bytes} bytes", code="body_too_large"
            )
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        return body

    async def serve(request: Request, chat: bool) -> Any:
        started = time.monotonic()
        labels = {"release": c.release, "revision": c.revision, "model": "", "adapter": ""}
        try:
            body = await read_json(request)
            model = body.get("model")
            adapter = server.resolve(model)
            labels = server.labels(model, adapter)
            if chat:
                prompt = server.chat_prompt(body.get("messages"))
            else:
                prompt = body.get("prompt")
                if not isinstance(prompt, str):
                    raise ApiError(400, "prompt must be a string", param="prompt")
            generation = server.generation(body, prompt, adapter)
            if c.fault_error_rate and server.faults.random() < c.fault_error_rate:
                raise ApiError(500, "injected fault", type_="server_error", code="injected_fault")
        except ApiError as exc:
            server.metrics.requests.labels(**labels, code=str(exc.status)).inc()
            return exc.response()
        run = Run(server, generation, labels, prompt, chat, started)
        if body.get("stream"):
            return StreamingResponse(run.stream(), media_type="text/event-stream")
        return await run.complete()

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        return await serve(request, chat=False)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        return await serve(request, chat=True)

    @app.post("/v1/load_lora_adapter")
    async def load_lora(request: Request) -> Any:
        try:
            body = await read_json(request)
            name, path = body.get("lora_name"), body.get("lora_path")
            if not isinstance(name, str) or not name or not isinstance(path, str):
                raise ApiError(400, "lora_name and lora_path are required strings")
            if name in server.models:
                raise ApiError(400, f"adapter {name!r} is already loaded", param="lora_name")
            if server.engine is None:
                raise ApiError(503, f"not ready: {server.reason}", type_="server_error")
            try:
                await asyncio.to_thread(verify, "adapter", path, body.get("digest"))
            except DigestMismatch as exc:
                raise ApiError(400, str(exc), param="digest", code="digest_mismatch") from None
            except FileNotFoundError as exc:
                raise ApiError(400, str(exc), param="lora_path") from None
            await asyncio.to_thread(server.engine.load_adapter, name, path)
            server.models[name] = name
            server.metrics.prime(server.labels(name, name))
            return PlainTextResponse(f"Success: LoRA adapter '{name}' added successfully.")
        except ApiError as exc:
            return exc.response()

    @app.post("/v1/unload_lora_adapter")
    async def unload_lora(request: Request) -> Any:
        try:
            body = await read_json(request)
            name = body.get("lora_name")
            if server.models.get(name) is None or server.engine is None:
                raise ApiError(
                    404,
                    f"adapter {name!r} is not loaded",
                    param="lora_name",
                    code="model_not_found",
                )
            await asyncio.to_thread(server.engine.unload_adapter, name)
            del server.models[name]
            return PlainTextResponse(f"Success: LoRA adapter '{name}' removed successfully.")
        except ApiError as exc:
            return exc.response()

    return app
