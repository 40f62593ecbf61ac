"""The OpenAI-compatible HTTP server: completions and chat completions (plain and SSE streaming),
models, vLLM's runtime LoRA API, health, readiness, metrics and review samples."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ftrelease.api.bundle import Prompt

from .checks import RefusalDetector, format_valid
from .digest import DigestMismatch, verify
from .engine import Engine, load_model, load_tokenizer
from .engine import Request as GenerationRequest
from .metrics import ServerMetrics
from .samples import SampleBuffer

log = logging.getLogger(__name__)


@dataclass
class ServerConfig:
    model_name: str
    base: str | None = None
    adapter: str | None = None
    adapter_digest: str | None = None
    merged: str | None = None
    merged_digest: str | None = None
    base_name: str = "base"
    release: str = ""
    revision: str = ""
    bundle: str | None = None  # the revision's bundle.json (system prompt, output format)
    max_batch: int = 16
    batch_wait_ms: float = 5.0
    mixed_batching: bool = True
    max_tokens_limit: int = 1024
    max_body_bytes: int = 1 << 20
    sample_rate: float = 0.01
    sample_capacity: int = 256
    redact: list[str] = field(default_factory=list)
    refusal_patterns: list[str] | None = None
    # Fault injection for canary drills and the analysis e2e: this fraction of requests for a
    # served model answer 500 (counted like any error). A real 2x error rate is hard to make.
    fault_error_rate: float = 0.0


class ApiError(Exception):
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
        self.status, self.message, self.type, self.param, self.code = (
            status,
            message,
            type_,
            param,
            code,
        )

    def response(self) -> JSONResponse:
        return JSONResponse(
            {
                "error": {
                    "message": self.message,
                    "type": self.type,
                    "param": self.param,
                    "code": self.code,
                }
            },
            status_code=self.status,
        )


class Server:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.metrics = ServerMetrics()
        self.faults = random.Random()
        self.samples = SampleBuffer(config.sample_rate, config.sample_capacity, config.redact)
        self.refusals = (
            RefusalDetector(config.refusal_patterns)
            if config.refusal_patterns is not None
            else RefusalDetector()
        )
        self.engine: Engine | None = None
        self.ready = False
        self.reason = "loading"
        self.models: dict[str, str | None] = {}  # served model name -> adapter (None: as loaded)
        self.prompt = Prompt()  # the bundle's system prompt and output format
        if config.bundle and Path(config.bundle).exists():
            bundle = json.loads(Path(config.bundle).read_text()).get("bundle", {})
            self.prompt = Prompt.model_validate(bundle.get("prompt") or {})

    # ---- loading ------------------------------------------------------------------------------

    def load(self) -> None:
        """Verifies every artifact's digest before loading anything; a mismatch keeps /ready
        false with the reason."""
        c = self.config
        try:
            if c.merged:
                verify("merged model", c.merged, c.merged_digest)
                model_dir = c.merged
            elif c.base:
                if c.adapter:
                    verify("adapter", c.adapter, c.adapter_digest)
                model_dir = c.base
            else:
                raise ValueError("give --base (with or without --adapter) or --merged")
            tokenizer = load_tokenizer(model_dir)
            model = load_model(model_dir)
            self.engine = Engine(
                model,
                tokenizer,
                max_batch=c.max_batch,
                batch_wait=c.batch_wait_ms / 1000,
                mixed=c.mixed_batching,
                on_batch=self._count_batch,
            )
            if c.adapter:
                self.engine.load_adapter(c.model_name, c.adapter)
                self.models = {c.model_name: c.model_name, c.base_name: None}
            else:
                self.models = {c.model_name: None}
            for name, adapter in self.models.items():
                self.metrics.prime(self.labels(name, adapter))
            self.ready, self.reason = True, "ready"
            log.info("serving %s", ", ".join(self.models))
        except DigestMismatch as exc:
            self.reason = f"digest mismatch: {exc}"
            log.error("refusing to load: %s", self.reason)
        except Exception as exc:
            self.reason = f"load failed: {exc}"
            log.exception("load failed")

    def _count_batch(self, rows: int, adapters: int) -> None:
        self.metrics.batch_rows.observe(rows)
        self.metrics.batch_adapters.observe(adapters)

    # ---- requests -----------------------------------------------------------------------------

    def resolve(self, model: Any) -> str | None:
        if not self.ready or self.engine is None:
            raise ApiError(503, f"not ready: {self.reason}", type_="server_error", code="not_ready")
        if not isinstance(model, str) or model not in self.models:
            raise ApiError(
                404,
                f"model {model!r} does not exist; served: {', '.join(self.models)}",
                param="model",
                code="model_not_found",
            )
        return self.models[model]

    def labels(self, model: str, adapter: str | None) -> dict[str, str]:
        name = adapter or ("merged" if self.config.merged else "__base__")
        return {
            "release": self.config.release,
            "revision": self.config.revision,
            "model": model,
            "adapter": name,
        }

    def chat_prompt(self, messages: Any) -> str:
        if (
            not isinstance(messages, list)
            or not messages
            or not all(
                isinstance(m, dict)
                and isinstance(m.get("content"), str)
                and m.get("role") in ("system", "user", "assistant")
                for m in messages
            )
        ):
            raise ApiError(
                400,
                "messages must be a non-empty list of {role: system|user|assistant, content: string}",
                param="messages",
            )
        if self.prompt.system and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": self.prompt.system}, *messages]
        tokenizer = self.engine.tokenizer
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"

    def generation(
        self, body: dict[str, Any], prompt: str, adapter: str | None
    ) -> GenerationRequest:
        max_tokens = body.get("max_tokens", 16)
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise ApiError(400, "max_tokens must be a positive integer", param="max_tokens")
        if max_tokens > self.config.max_tokens_limit:
            raise ApiError(
                400,
                f"max_tokens {max_tokens} is over this server's limit of "
                f"{self.config.max_tokens_limit}",
                param="max_tokens",
            )
        temperature = body.get("temperature", 1.0)
        top_p = body.get("top_p", 1.0)
        for name, value in (("temperature", temperature), ("top_p", top_p)):
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ApiError(400, f"{name} must be a number of at least 0", param=name)
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else stop
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise ApiError(400, "stop must be a string or a list of strings", param="stop")
        seed = body.get("seed")
        ids = self.engine.tokenizer(prompt, add_special_tokens=True)["input_ids"]
        limit = self.engine.context_length
        if len(ids) + max_tokens > limit:
            raise ApiError(
                400,
                f"the prompt ({len(ids)} tokens) plus max_tokens ({max_tokens}) is "
                f"longer than the context of {limit} tokens",
                param="messages",
                code="context_length_exceeded",
            )
        return GenerationRequest(
            prompt_ids=ids,
            adapter=adapter,
            max_tokens=max_tokens,
            temperature=float(temperature),
            top_p=float(top_p),
            stop=stop,
            seed=seed if isinstance(seed, int) else None,
            ignore_eos=body.get("ignore_eos") is True,
        )


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


class Run:
    """One request through the engine, with its metrics, checks and sample."""

    def __init__(
        self,
        server: Server,
        generation: GenerationRequest,
        labels: dict[str, str],
        prompt: str,
        chat: bool,
        started: float,
    ) -> None:
        self.server, self.generation, self.labels = server, generation, labels
        self.prompt, self.chat, self.started = prompt, chat, started
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())

    async def events(self) -> AsyncIterator[tuple]:
        generation = self.generation
        generation.loop = asyncio.get_running_loop()
        generation.events = asyncio.Queue()
        metrics = self.server.metrics
        metrics.in_flight.labels(**self.labels).inc()
        try:
            self.server.engine.submit(generation)
            while True:
                event = await generation.events.get()
                yield event
                if event[0] in ("done", "error"):
                    return
        finally:
            metrics.in_flight.labels(**self.labels).dec()

    def finish(self, text: str, completion_tokens: int, code: int) -> None:
        m, labels = self.server.metrics, self.labels
        m.requests.labels(**labels, code=str(code)).inc()
        m.duration.labels(**labels).observe(time.monotonic() - self.started)
        if self.generation.first_token_at is not None:
            m.first_token.labels(**labels).observe(
                self.generation.first_token_at - self.generation.submitted
            )
        m.prompt_tokens.labels(**labels).inc(len(self.generation.prompt_ids))
        m.generated_tokens.labels(**labels).inc(completion_tokens)
        if code != 200:
            return
        output_format = self.server.prompt.output_format
        if output_format.type != "text":
            m.format_checked.labels(**labels).inc()
            if not format_valid(output_format, text):
                m.format_invalid.labels(**labels).inc()
        if self.server.refusals.refused(text):
            m.refusals.labels(**labels).inc()
        self.server.samples.offer(labels["model"], labels["adapter"], self.prompt, text)

    def choice(self, text: str, reason: str | None, delta: bool) -> dict[str, Any]:
        if self.chat:
            key = "delta" if delta else "message"
            return {
                "index": 0,
                key: {"role": "assistant", "content": text},
                "finish_reason": reason,
            }
        return {"index": 0, "text": text, "finish_reason": reason}

    def envelope(
        self, choice: dict[str, Any], usage: dict[str, int] | None = None, chunk: bool = False
    ) -> dict[str, Any]:
        kind = ("chat.completion" if self.chat else "text_completion") + (
            ".chunk" if chunk and self.chat else ""
        )
        body = {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.labels["model"],
            "choices": [choice],
        }
        if usage is not None:
            body["usage"] = usage
        return body

    def usage(self, completion_tokens: int) -> dict[str, int]:
        prompt = len(self.generation.prompt_ids)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
        }

    async def complete(self) -> JSONResponse:
        text = ""
        async for event in self.events():
            if event[0] == "delta":
                text += event[1]
            elif event[0] == "error":
                self.finish(text, 0, 500)
                return ApiError(
                    500, f"generation failed: {event[1]}", type_="server_error"
                ).response()
            else:
                _, reason, tokens = event
                self.finish(text, tokens, 200)
                return JSONResponse(
                    self.envelope(self.choice(text, reason, False), self.usage(tokens))
                )
        raise AssertionError("the engine ended a request without done or error")

    async def stream(self) -> AsyncIterator[str]:
        text = ""
        async for event in self.events():
            if event[0] == "delta":
                text += event[1]
                yield f"data: {json.dumps(self.envelope(self.choice(event[1], None, True), chunk=True))}\n\n"
            elif event[0] == "error":
                self.finish(text, 0, 500)
                yield f"data: {json.dumps({'error': {'message': event[1], 'type': 'server_error'}})}\n\n"
            else:
                _, reason, tokens = event
                self.finish(text, tokens, 200)
                final = self.envelope(self.choice("", reason, True), self.usage(tokens), chunk=True)
                yield f"data: {json.dumps(final)}\n\n"
        yield "data: [DONE]\n\n"
