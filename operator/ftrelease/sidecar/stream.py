"""Reading answers out of an OpenAI-compatible server's responses, for the checks: a whole JSON
response, or a stream of server-sent events read as it passes through (the bytes themselves go
on to the client untouched)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from ftrelease.checks.answers import Answer


@dataclass
class Parsed:
    """What the checks need of one response."""

    texts: dict[int, str] = field(default_factory=dict)
    reasons: dict[int, str | None] = field(default_factory=dict)
    tools: dict[int, list[str]] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int | None = None  # from usage, when the server sends it
    chunks: int = 0  # content-bearing chunks: the completion tokens when there is no usage
    first_content_at: float | None = None

    def answers(self) -> list[Answer]:
        return [
            Answer(self.texts.get(i, ""), self.reasons.get(i), tuple(self.tools.get(i, [])))
            for i in sorted(self.texts.keys() | self.reasons.keys())
        ]

    def tokens(self) -> int:
        return self.completion_tokens if self.completion_tokens is not None else self.chunks

    def take(self, document: dict[str, Any], delta: bool) -> None:
        """One response body (delta False) or one streamed chunk (delta True)."""
        usage = document.get("usage") or {}
        if usage:
            self.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            self.completion_tokens = int(usage.get("completion_tokens") or 0)
        for choice in document.get("choices") or []:
            index = int(choice.get("index") or 0)
            message = choice.get("delta" if delta else "message") or {}
            text = choice.get("text") if "text" in choice else message.get("content")
            if text:
                self.texts[index] = self.texts.get(index, "") + text
                self.chunks += 1
                if self.first_content_at is None:
                    self.first_content_at = time.monotonic()
            else:
                self.texts.setdefault(index, "")
            for call in message.get("tool_calls") or []:
                name = (call.get("function") or {}).get("name")
                if name:
                    self.tools.setdefault(index, []).append(name)
            if choice.get("finish_reason"):
                self.reasons[index] = choice["finish_reason"]


class EventReader:
    """Server-sent events, fed as bytes arrive in any pieces; each `data:` line's JSON goes to a
    Parsed (OpenAI-compatible servers put one JSON document on each). `data: [DONE]` and
    anything not JSON are passed over."""

    def __init__(self, parsed: Parsed) -> None:
        self.parsed = parsed
        self._partial = b""  # a line not yet ended

    def feed(self, data: bytes) -> None:
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()  # and the \r of a \r\n ending
            if payload == b"[DONE]":
                continue
            try:
                document = json.loads(payload)
            except ValueError:
                continue
            if isinstance(document, dict):
                self.parsed.take(document, delta=True)
