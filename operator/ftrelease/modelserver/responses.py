"""One request through the engine: its choices generated side by side, answered as one OpenAI
response (JSON, or SSE when streamed), with the request's metrics, output checks and review
sample. A client that goes away stops its generation; that is counted (code 499)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi.responses import JSONResponse

from ftrelease.checks.answers import Answer
from ftrelease.checks.http import ApiError

from .engine import QueueFull
from .server import Choice, Server

DISCONNECT_POLL = 0.25  # seconds between checks that a non-streaming client is still there


class Run:
    def __init__(
        self,
        server: Server,
        choices: list[Choice],
        labels: dict[str, str],
        sample: dict[str, Any],
        chat: bool,
        started: float,
        include_usage: bool = False,
    ) -> None:
        self.server, self.choices, self.labels = server, choices, labels
        self.sample, self.chat, self.started = sample, chat, started
        self.include_usage = include_usage
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.events: asyncio.Queue = asyncio.Queue()
        self.texts = ["" for _ in choices]
        self.reasons: list[str | None] = [None for _ in choices]
        self.tokens = [0 for _ in choices]
        self.finished = False

    def start(self) -> None:
        """Queues every choice; a full queue is a 429 and nothing stays queued."""
        loop = asyncio.get_running_loop()
        for choice in self.choices:
            choice.request.loop, choice.request.events = loop, self.events
            choice.request.tag = choice.index
            try:
                self.server.engine.submit(choice.request)
            except QueueFull as exc:
                self.cancel()
                raise ApiError(
                    429,
                    f"the server is busy ({exc}); retry after a second",
                    type_="rate_limit_error",
                    code="queue_full",
                ) from None
        self.server.metrics.in_flight.labels(**self.labels).inc()

    def cancel(self) -> None:
        for choice in self.choices:
            choice.request.cancelled = True

    async def _events(self) -> AsyncIterator[tuple]:
        pending = len(self.choices)
        while pending:
            event = await self.events.get()
            if event[1] == "error":
                raise ApiError(500, event[2], type_="server_error", code="generation_failed")
            if event[1] == "done":
                _, _, reason, tokens = event
                self.reasons[event[0]], self.tokens[event[0]] = reason, tokens
                pending -= 1
            else:
                self.texts[event[0]] += event[2]
            yield event

    def finish(self, code: int) -> None:
        """The request's metrics, output checks and sample, once."""
        if self.finished:
            return
        self.finished = True
        self.cancel()  # whatever is still generating stops (an error, a client gone)
        server, labels = self.server, self.labels
        server.metrics.in_flight.labels(**labels).dec()
        first = [c.request.first_token_at for c in self.choices if c.request.first_token_at]
        server.metrics.record_request(
            labels,
            code,
            time.monotonic() - self.started,
            min(first) - self.started if first else None,
            self.usage()["prompt_tokens"],
            sum(self.tokens),
        )
        if code != 200:
            return
        answers = [Answer(t, r) for t, r in zip(self.texts, self.reasons, strict=True)]
        flags = server.checks.record(labels, answers, self.chat)
        server.samples.offer(
            labels["model"],
            labels["adapter"],
            self.sample,
            self.texts[0],
            flags,
            finish_reason=self.reasons[0],
        )

    def usage(self) -> dict[str, int]:
        # n choices of one prompt share its ids: each prompt counts once.
        prompt = sum(
            {id(c.request.prompt_ids): len(c.request.prompt_ids) for c in self.choices}.values()
        )
        completion = sum(self.tokens)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def choice(self, index: int, text: str, reason: str | None, delta: bool) -> dict[str, Any]:
        if self.chat:
            key = "delta" if delta else "message"
            content = {"role": "assistant", "content": text}
            return {"index": index, key: content, "logprobs": None, "finish_reason": reason}
        return {"index": index, "text": text, "logprobs": None, "finish_reason": reason}

    def envelope(self, choices: list[dict[str, Any]], chunk: bool = False) -> dict[str, Any]:
        kind = "chat.completion" if self.chat else "text_completion"
        return {
            "id": self.id,
            "object": kind + (".chunk" if chunk and self.chat else ""),
            "created": self.created,
            "model": self.labels["model"],
            "choices": choices,
        }

    async def complete(self, disconnected: Callable[[], Awaitable[bool]]) -> JSONResponse:
        """The whole answer at once; stops early if the client goes away meanwhile."""
        done = asyncio.ensure_future(self._drain())
        try:
            while not done.done():
                await asyncio.wait({done}, timeout=DISCONNECT_POLL)
                if not done.done() and await disconnected():
                    done.cancel()
                    self.finish(499)
                    return ApiError(499, "the client went away", code="client_closed").response()
            done.result()
        except ApiError as exc:
            self.finish(exc.status)
            return exc.response()
        self.finish(200)
        body = self.envelope(
            [
                self.choice(i, text, reason, False)
                for i, (text, reason) in enumerate(zip(self.texts, self.reasons, strict=True))
            ]
        )
        body["usage"] = self.usage()
        return JSONResponse(body)

    async def _drain(self) -> None:
        async for _ in self._events():
            pass

    async def stream(self) -> AsyncIterator[str]:
        """Server-sent events as the tokens come; a client that goes away closes this
        generator, which stops the generation and counts it."""
        try:
            async for event in self._events():
                if event[1] == "delta":
                    chunk = self.envelope([self.choice(event[0], event[2], None, True)], True)
                else:
                    chunk = self.envelope([self.choice(event[0], "", event[2], True)], True)
                yield _sse(chunk)
            self.finish(200)
            if self.include_usage:
                yield _sse(self.envelope([], True) | {"usage": self.usage()})
        except ApiError as exc:
            self.finish(exc.status)
            yield _sse(json.loads(exc.response().body))
        finally:
            self.finish(499)  # only if not finished: the client went away mid-stream
        yield "data: [DONE]\n\n"


def _sse(document: dict[str, Any]) -> str:
    return f"data: {json.dumps(document)}\n\n"
