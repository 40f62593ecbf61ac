"""Sampled request/response pairs for human review: a bounded ring buffer, redacted."""

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
        self._redact = [re.compile(p) for p in redact]
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.seen = 0

    def redact(self, text: str) -> str:
        for pattern in self._redact:
            text = pattern.sub(REDACTED, text)
        return text

    def offer(self, model: str, adapter: str, prompt: str, response: str, **extra: Any) -> bool:
        """Keeps the pair with probability `rate`; returns whether it was kept."""
        with self._lock:
            self.seen += 1
            if self._random.random() >= self.rate:
                return False
            self._items.append(
                {
                    "time": time.time(),
                    "model": model,
                    "adapter": adapter,
                    "prompt": self.redact(prompt),
                    "response": self.redact(response),
                    **extra,
                }
            )
            return True

    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._items)
