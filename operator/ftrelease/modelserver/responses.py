"""One request through the engine: its OpenAI responses (JSON, or SSE when streamed), with the
request's metrics, output checks and review sample."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import JSONResponse

from .checks import format_valid
from .engine import Request as GenerationRequest
from .server import ApiError, Server


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
