"""The response checker: a reverse proxy in front of any OpenAI-compatible server (vLLM) that
measures its answers exactly as the builtin server measures its own (ftrelease.checks). It puts
the bundle's system prompt first in each chat, passes every response through as it comes
(server-sent events byte for byte), and reads the answers on the way: output format, refusals,
escalations, finish reasons, token counts from `usage`, latency and time to the first token,
plus review samples on an admin port. An upstream that is down, slow or failing is answered in
OpenAI's error shape and counted."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from httpx_aiohttp import AiohttpTransport
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from ftrelease.api.bundle import Prompt
from ftrelease.checks.answers import AnswerChecks
from ftrelease.checks.bundle import BundleProblem, lead_with, read_bundle_prompt
from ftrelease.checks.http import ApiError, Guard, create_admin_app, serve_all
from ftrelease.checks.metrics import ServerMetrics
from ftrelease.checks.output import RefusalDetector
from ftrelease.checks.samples import SampleBuffer

from .stream import EventReader, Parsed

log = logging.getLogger(__name__)
CHECKED = ("/v1/chat/completions", "/v1/completions")


@dataclass
class SidecarConfig:
    upstream: str  # the runtime's base URL, e.g. http://127.0.0.1:8001
    model_name: str  # the bundle's routing.modelName: the fine-tune, as clients ask for it
    artifact: str = "adapter"  # adapter | merged: the `adapter` label of model_name's series
    release: str = ""
    revision: str = ""
    bundle: str | None = None
    admin_port: int | None = None
    timeout: float = 600.0  # seconds an upstream answer may take
    connect_timeout: float = 5.0
    max_body_bytes: int = 1 << 20
    sample_rate: float = 0.01
    sample_capacity: int = 256
    redact: list[str] = field(default_factory=list)
    refusal_patterns: list[str] | None = None


class Sidecar:
    def __init__(self, config: SidecarConfig) -> None:
        self.config = config
        self.metrics = ServerMetrics()
        self.samples = SampleBuffer(config.sample_rate, config.sample_capacity, config.redact)
        refusals = RefusalDetector(*([config.refusal_patterns] if config.refusal_patterns else []))
        self.checks = AnswerChecks(Prompt(), refusals, self.metrics)
        self.problem: str | None = None
        if config.bundle:
            try:
                self.checks.prompt = read_bundle_prompt(Path(config.bundle), config.revision)
            except BundleProblem as exc:
                self.problem = f"bundle: {exc}"
        # httpx's API on aiohttp's connection pool: httpcore's pool re-checks every idle
        # connection on each request, several times the CPU of the answer itself (bench/sidecar).
        self.transport = AiohttpTransport()
        timeout = httpx.Timeout(config.timeout, connect=config.connect_timeout)
        self.client = httpx.AsyncClient(
            base_url=config.upstream, timeout=timeout, transport=self.transport
        )
        self.timeouts = timeout.as_dict()
        self.urls = {path: self.client.base_url.join(path) for path in CHECKED}
        self.metrics.prime(self.labels(config.model_name))

    def labels(self, model: Any) -> dict[str, str]:
        c = self.config
        served = isinstance(model, str) and model == c.model_name
        adapter = (c.model_name if c.artifact == "adapter" else "merged") if served else "__base__"
        return {
            "release": c.release,
            "revision": c.revision,
            "model": model if isinstance(model, str) else "",
            "adapter": adapter if isinstance(model, str) else "",
        }

    def unresolved_labels(self) -> dict[str, str]:
        return self.labels(None)

    def guard(self) -> dict[str, Any]:
        return {
            "metrics": self.metrics,
            "labels": self.unresolved_labels,
            "max_body_bytes": self.config.max_body_bytes,
        }

    # ---- one request ----------------------------------------------------------------------

    async def forward(self, request: Request, path: str) -> Response:
        started = time.monotonic()
        chat = path == "/v1/chat/completions"
        labels = self.unresolved_labels()
        try:
            raw, body = await self._read(request, chat)
            labels = self.labels(body.get("model"))
            if body.get("stream"):
                return await self._stream(path, raw, body, labels, chat, started)
            try:
                upstream = await self._send(path, raw)
                try:
                    await upstream.aread()
                finally:
                    await upstream.aclose()
            except UPSTREAM_FAILURES as exc:
                raise _upstream_error(exc) from None
            if upstream.status_code != 200:
                raise _upstream_status(upstream.status_code, upstream.content)
            parsed = Parsed()
            try:
                parsed.take(upstream.json(), delta=False)
            except (ValueError, AttributeError):
                raise ApiError(
                    502,
                    "the upstream's answer is not JSON",
                    type_="server_error",
                    code="upstream_bad_answer",
                ) from None
        except ApiError as exc:
            self._record(labels, exc.status, started, None, body=None, chat=chat)
            return exc.response()
        self._record(labels, 200, started, parsed, body=body, chat=chat)
        return Response(upstream.content, media_type=upstream.headers.get("content-type"))

    async def _send(self, path: str, raw: bytes) -> httpx.Response:
        """Straight to the transport, its body not yet read: the client's cookies, auth,
        redirects and URL merging cost more per request than the checks do."""
        request = httpx.Request(
            "POST",
            self.urls[path],
            content=raw,
            headers=_JSON,
            extensions={"timeout": self.timeouts},
        )
        return await self.transport.handle_async_request(request)

    async def _read(self, request: Request, chat: bool) -> tuple[bytes, dict[str, Any]]:
        raw = await request.body()
        if len(raw) > self.config.max_body_bytes:
            raise ApiError(
                413, f"request body over {self.config.max_body_bytes} bytes", code="body_too_large"
            )
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise ApiError(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        messages = body.get("messages")
        system = self.checks.prompt.system
        if (
            chat
            and system
            and isinstance(messages, list)
            and all(isinstance(m, dict) for m in messages)
        ):
            raw = json.dumps({**body, "messages": lead_with(system, messages)}).encode()
        return raw, body  # the body as the client sent it: what samples keep

    async def _stream(self, path, raw, body, labels, chat, started) -> Response:
        try:
            upstream = await self._send(path, raw)
        except UPSTREAM_FAILURES as exc:
            raise _upstream_error(exc) from None
        if upstream.status_code != 200:
            content = await upstream.aread()
            await upstream.aclose()
            raise _upstream_status(upstream.status_code, content)
        parsed = Parsed()
        reader = EventReader(parsed)

        async def relay():
            code = 499  # unless it ends: the client went away
            try:
                async for data in upstream.aiter_raw():
                    reader.feed(data)
                    yield data
                code = 200
            except UPSTREAM_FAILURES as exc:  # the upstream broke off mid-answer
                error = _upstream_error(exc)
                code = error.status
                yield f"data: {json.dumps(error.body())}\n\ndata: [DONE]\n\n".encode()
            finally:
                await upstream.aclose()
                self._record(labels, code, started, parsed, body=body, chat=chat)

        return StreamingResponse(relay(), media_type=upstream.headers.get("content-type"))

    def _record(
        self, labels, code: int, started: float, parsed: Parsed | None, body, chat: bool
    ) -> None:
        first = parsed.first_content_at - started if parsed and parsed.first_content_at else None
        prompt_tokens = parsed.prompt_tokens if parsed else 0
        tokens = parsed.tokens() if parsed else 0
        seconds = time.monotonic() - started
        self.metrics.record_request(labels, code, seconds, first, prompt_tokens, tokens)
        if code != 200 or parsed is None:
            return
        answers = parsed.answers()
        flags = self.checks.record(labels, answers, chat)
        asked = {k: body[k] for k in ("messages", "prompt") if k in body}
        if answers:
            self.samples.offer(
                labels["model"],
                labels["adapter"],
                asked,
                answers[0].text,
                flags,
                finish_reason=answers[0].finish_reason,
            )

    async def ready(self) -> tuple[bool, str]:
        if self.problem:
            return False, self.problem
        try:
            health = await self.client.get("/health", timeout=2)
        except UPSTREAM_FAILURES as exc:
            return False, f"upstream not reachable: {exc.__class__.__name__}"
        if health.status_code != 200:
            return False, f"upstream not ready: /health answered {health.status_code}"
        return True, "ready"


_JSON = {"content-type": "application/json"}


# httpx's errors, and a bare timeout that the aiohttp transport lets through unmapped.
UPSTREAM_FAILURES = (httpx.HTTPError, TimeoutError)


def _timed_out(exc: Exception) -> bool:
    """The aiohttp transport maps any dropped connection to httpx.ConnectTimeout: what it came
    from says whether the upstream was slow or gone."""
    cause = exc.__cause__
    if cause is not None and not isinstance(cause, httpx.HTTPError):
        return isinstance(cause, TimeoutError)
    return isinstance(exc, (httpx.TimeoutException, TimeoutError))


def _upstream_error(exc: Exception) -> ApiError:
    if _timed_out(exc):
        return ApiError(
            504,
            f"the upstream did not answer in time: {exc.__class__.__name__}",
            type_="server_error",
            code="upstream_timeout",
        )
    return ApiError(
        502,
        f"the upstream is unavailable: {exc.__class__.__name__}",
        type_="server_error",
        code="upstream_unavailable",
    )


def _upstream_status(status: int, content: bytes) -> ApiError:
    """An upstream error answer, kept as OpenAI-shaped as it came (vLLM's are), or wrapped."""
    try:
        error = json.loads(content)["error"]
        message = str(error.get("message") or error)
        kind = error.get("type") or ("server_error" if status >= 500 else "invalid_request_error")
        return ApiError(
            status, message, type_=kind, param=error.get("param"), code=error.get("code")
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        text = content[:200].decode("utf-8", "replace")
        kind = "server_error" if status >= 500 else "invalid_request_error"
        return ApiError(
            status, f"the upstream answered {status}: {text}", type_=kind, code="upstream_error"
        )


def create_app(sidecar: Sidecar) -> Starlette:
    """Plain Starlette routes: a proxy in front of every request keeps its own cost small."""

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        ok, reason = await sidecar.ready()
        return JSONResponse({"ready": ok, "reason": reason}, status_code=200 if ok else 503)

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(
            generate_latest(sidecar.metrics.registry), media_type=CONTENT_TYPE_LATEST
        )

    async def checked(request: Request) -> Response:
        return await sidecar.forward(request, request.url.path)

    async def passthrough(request: Request) -> Response:
        """Anything else (models, tokenize...) as it is, unchecked."""
        try:
            upstream = await sidecar.client.request(
                request.method,
                request.url.path,
                params=request.query_params,
                content=await request.body(),
                headers={
                    k: v
                    for k, v in request.headers.items()
                    if k.lower() in ("content-type", "authorization")
                },
            )
        except UPSTREAM_FAILURES as exc:
            return _upstream_error(exc).response()
        return Response(
            upstream.content, upstream.status_code, media_type=upstream.headers.get("content-type")
        )

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *(Route(path, checked, methods=["POST"]) for path in CHECKED),
        Route("/{rest:path}", passthrough, methods=["GET", "POST", "PUT", "DELETE"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(Guard, **sidecar.guard())])


def serve_forever(sidecar: Sidecar, host: str, port: int) -> None:
    apps = [(create_app(sidecar), port)]
    if sidecar.config.admin_port:
        apps.append((create_admin_app(sidecar.samples, sidecar.guard()), sidecar.config.admin_port))
    serve_all(apps, host)
