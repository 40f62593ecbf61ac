"""Sampled request/response pairs for human review, redacted, in bounded ring buffers: a random
share of all answers, and every flagged one (an invalid format, a refusal, an escalation: what
analysis rolls back on and what people look at first), each flagged with what it failed."""

from __future__ import annotations

import random
import re
import threading
import time
from collections import deque
from typing import Any

REDACTED = "[REDACTED]"


class SampleBuffer:
    def __init__(
        self, rate: float, capacity: int, redact: list[str], seed: int | None = None
    ) -> None:
        self.rate = rate
        self._items: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._flagged: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._redact = [re.compile(p) for p in redact]
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.seen = 0

    def redact(self, text: str) -> str:
        for pattern in self._redact:
            text = pattern.sub(REDACTED, text)
        return text

    def offer(
        self,
        model: str,
        adapter: str,
        request: dict[str, Any],
        response: str,
        flags: list[str] | None = None,
        **extra: Any,
    ) -> bool:
        """Keeps the pair with probability `rate`, and always when it is flagged; returns
        whether it was kept. `request` is what the client sent (its messages or prompt), never
        the rendered prompt with the bundle's system prompt in it."""
        with self._lock:
            self.seen += 1
            sampled = self._random.random() < self.rate
            if not sampled and not flags:
                return False
            item = {
                "time": time.time(),
                "model": model,
                "adapter": adapter,
                **{k: self._redacted(v) for k, v in request.items()},
                "response": self.redact(response),
                "flags": list(flags or ()),
                **extra,
            }
            if sampled:
                self._items.append(item)
            if flags:
                self._flagged.append(item)
            return True

    def _redacted(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, list):
            return [self._redacted(v) for v in value]
        if isinstance(value, dict):
            return {k: self._redacted(v) for k, v in value.items()}
        return value

    def items(self, limit: int | None = None, flagged: bool = False) -> list[dict[str, Any]]:
        """The newest `limit` samples (all by default), oldest first; `flagged`: of the
        flagged ones."""
        with self._lock:
            items = list(self._flagged if flagged else self._items)
        return items[-limit:] if limit else items

    def clear(self) -> int:
        with self._lock:
            count = len(self._items) + len(self._flagged)
            self._items.clear()
            self._flagged.clear()
            return count
