"""STAND-IN for a gateway's data plane (no Envoy or other proxy can be installed on these
machines). It plays what a Gateway API implementation does with an HTTPRoute, for tests and the
demo only: it reads the route from the apiserver, resolves each backend Service through its
EndpointSlices (ready endpoints only), and sends OpenAI requests split by the route's weights,
with a copy to the RequestMirror backend for the filter's percent of requests (the mirror's
answers are discarded). Only the route's first rule is played and its matches are not
evaluated: every request matches. A release with the `replicas` provider has no route: then
the stand-in is the Service's proxy, sending every request to the Service's ready endpoints.
Pod IPs are reached through the local pod network (podnetwork.py)."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from kubernetes import client
from kubernetes.client.rest import ApiException

from .podnetwork import local_address

STAND_IN = "gateway stand-in (tests/cluster/gateway.py), not a real data plane"
# (path, JSON body) of one client request, drawn with the stand-in's random generator.
Request = Callable[[random.Random], tuple[str, dict[str, Any]]]


def completion(model: str, prompt: str = "hello", max_tokens: int = 1) -> Request:
    return lambda _: (
        "/v1/completions",
        {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0},
    )


def chat(model: str, content: str = "hello", max_tokens: int = 4, **extra: Any) -> Request:
    return lambda _: (
        "/v1/chat/completions",
        {
            "model": model,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": max_tokens,
            "temperature": 0,
            **extra,
        },
    )


@dataclass
class Routing:
    """What the stand-in last read: backend weights, the mirror and each Service's endpoints."""

    weights: list[tuple[str, int]] = field(default_factory=list)
    mirror: str | None = None
    mirror_percent: float = 0.0
    endpoints: dict[str, list[str]] = field(default_factory=dict)  # Service -> base URLs


def pick(routing: Routing, rng: random.Random) -> tuple[str | None, str | None]:
    """The backend that answers a request, by weight, and the one that gets a mirrored copy (or
    None), by the mirror's percent."""
    draw = rng.uniform(0, sum(w for _, w in routing.weights))
    mirrored = rng.uniform(0, 100) < routing.mirror_percent
    backend = None
    for name, weight in routing.weights:
        draw -= weight
        if weight and draw < 0:
            backend = name
            break
    return backend, routing.mirror if mirrored else None


class GatewayStandIn:
    def __init__(
        self,
        kube: client.ApiClient,
        namespace: str,
        route: str,
        request: Request,
        rps: float,
        workers: int = 4,
        seed: int = 7,
    ) -> None:
        self.namespace = namespace
        self.route = route
        self.request = request
        self.custom = client.CustomObjectsApi(kube)
        self.core = client.CoreV1Api(kube)
        self.discovery = client.DiscoveryV1Api(kube)
        self.interval = workers / rps  # each worker sends one request per interval
        self.workers = workers
        # (backend Service, HTTP status or "no endpoints" / "unreachable") -> requests
        self.sent: Counter[tuple[str, int | str]] = Counter()
        self.mirrored: Counter[tuple[str, int | str]] = Counter()
        self.routing = Routing()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._random = random.Random(seed)

    def __enter__(self) -> GatewayStandIn:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._follow, daemon=True)]
        self._threads += [
            threading.Thread(target=self._send, daemon=True) for _ in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def answered(self, backend: str) -> int:
        """Requests `backend` answered with 200."""
        return self.sent[(backend, 200)]

    # ---- the control plane side: what the route and EndpointSlices say --------------------

    def read(self) -> Routing:
        try:
            route = self.custom.get_namespaced_custom_object(
                "gateway.networking.k8s.io", "v1", self.namespace, "httproutes", self.route
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            routing = Routing(weights=[(self.route, 1)])  # no route: the Service itself
        else:
            rule = route["spec"]["rules"][0]
            routing = Routing(
                weights=[(b["name"], int(b.get("weight", 1))) for b in rule["backendRefs"]]
            )
            for f in rule.get("filters") or []:
                if f["type"] == "RequestMirror":
                    mirror = f["requestMirror"]
                    routing.mirror = mirror["backendRef"]["name"]
                    fraction = mirror.get("fraction")
                    routing.mirror_percent = (
                        100.0 * fraction["numerator"] / fraction.get("denominator", 100)
                        if fraction
                        else float(mirror.get("percent", 100))
                    )
        services = {name for name, _ in routing.weights} | {routing.mirror} - {None}
        routing.endpoints = {name: self._endpoints(name) for name in services}
        return routing

    def _endpoints(self, service: str) -> list[str]:
        """Base URLs of the Service's ready endpoints on its first port."""
        try:
            port_name = (
                self.core.read_namespaced_service(service, self.namespace).spec.ports[0].name
            )
        except ApiException as exc:
            if exc.status == 404:
                return []
            raise
        slices = self.discovery.list_namespaced_endpoint_slice(
            self.namespace, label_selector=f"kubernetes.io/service-name={service}"
        ).items
        urls = []
        for piece in slices:
            port = next((p.port for p in piece.ports or [] if p.name == port_name), None)
            for endpoint in piece.endpoints or []:
                if port is not None and endpoint.conditions and endpoint.conditions.ready:
                    urls += [f"http://{local_address(a)}:{port}" for a in endpoint.addresses]
        return sorted(urls)

    def _follow(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # apiserver away: keep the last routing
                self.routing = self.read()
            self._stop.wait(0.3)

    # ---- the data plane side ------------------------------------------------------------------

    def _forward(
        self, http: httpx.Client, routing: Routing, backend: str, path: str, body: dict
    ) -> int | str:
        urls = routing.endpoints.get(backend) or []
        if not urls:
            return "no endpoints"
        with self._lock:
            url = self._random.choice(urls)
        try:
            return http.post(f"{url}{path}", json=body).status_code
        except httpx.HTTPError:
            return "unreachable"

    def _send(self) -> None:
        with httpx.Client(timeout=60) as http:
            next_at = time.monotonic()
            while not self._stop.is_set():
                routing = self.routing
                with self._lock:
                    backend, mirror = pick(routing, self._random)
                    path, body = self.request(self._random)
                if mirror is not None:  # the copy first, its answer discarded (counted only)
                    outcome = self._forward(http, routing, mirror, path, body)
                    with self._lock:
                        self.mirrored[(mirror, outcome)] += 1
                if backend is not None:
                    outcome = self._forward(http, routing, backend, path, body)
                    with self._lock:
                        self.sent[(backend, outcome)] += 1
                next_at += self.interval
                self._stop.wait(max(0.0, next_at - time.monotonic()))
