"""A stand-in for the gateway's data plane: sends requests to real model-server processes split
by the HTTPRoute's current weights and mirror, as read from the apiserver (KWOK pods run
nothing, so no real gateway could reach them)."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import Counter
from collections.abc import Callable

import httpx

# (backend revisions and weights, mirrored revision, mirror percent), as Releases.route_state.
RouteState = tuple[tuple[tuple[str, int], ...], str | None, int]


class TrafficGenerator:
    def __init__(
        self,
        read_route: Callable[[], RouteState],
        backends: dict[str, str],  # revision -> base URL of its model server
        model: str,
        rps: float,
        workers: int = 4,
    ) -> None:
        self.read_route = read_route
        self.backends = backends
        self.model = model
        self.interval = workers / rps  # each worker sends one request per interval
        self.workers = workers
        self.sent: Counter[tuple[str, int]] = Counter()  # (revision, status) -> requests
        self._route: RouteState | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._random = random.Random(7)

    def __enter__(self) -> TrafficGenerator:
        self._threads = [threading.Thread(target=self._follow_route, daemon=True)]
        self._threads += [
            threading.Thread(target=self._send, daemon=True) for _ in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _follow_route(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # no route yet: keep the last one
                self._route = self.read_route()
            self._stop.wait(0.3)

    def _pick(self) -> tuple[str | None, str | None]:
        """The revision that answers, and the one that gets a mirrored copy (or None)."""
        route = self._route
        if route is None:
            return None, None
        weights, mirror_to, mirror_percent = route
        with self._lock:
            draw = self._random.uniform(0, 100)
            mirrored = mirror_to if self._random.uniform(0, 100) < mirror_percent else None
        total = sum(w for _, w in weights)
        if total == 0:
            return None, mirrored
        threshold = draw * total / 100
        for revision, weight in weights:
            threshold -= weight
            if threshold < 0:
                return revision, mirrored
        return weights[-1][0], mirrored

    def _send(self) -> None:
        with httpx.Client(timeout=30) as client:
            next_at = time.monotonic()
            while not self._stop.is_set():
                revision, mirrored = self._pick()
                for target in (revision, mirrored):
                    if target is None or target not in self.backends:
                        continue
                    try:
                        response = client.post(
                            f"{self.backends[target]}/v1/completions",
                            json={"model": self.model, "prompt": "hello", "max_tokens": 1},
                        )
                        status = response.status_code
                    except httpx.HTTPError:
                        status = 0
                    with self._lock:
                        self.sent[(target, status)] += 1
                next_at += self.interval
                self._stop.wait(max(0.0, next_at - time.monotonic()))
