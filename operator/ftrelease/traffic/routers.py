"""Traffic providers. Each turns a planned Route into the objects that realise it, and reads the
Route back from those objects. Pure: the operator does the I/O. Chosen by `spec.traffic.provider`
from ROUTERS, like Flagger's router factory."""

from __future__ import annotations

import json
from typing import Any, Protocol

from ftrelease.api.bundle import RouteMatch
from ftrelease.api.ownership import RELEASE_LABEL, ReleaseRef, object_name
from ftrelease.api.route import Route
from ftrelease.api.spec import FineTuneReleaseSpec

ROUTE_ANNOTATION = "finetune.dev/route"


class Router(Protocol):
    api_version: str
    kind: str

    def route_object(
        self, ref: ReleaseRef, spec: FineTuneReleaseSpec, route: Route, matches: list[RouteMatch]
    ) -> dict[str, Any]:
        """The one object that carries the route: writing it is the route write."""

    def read_route(self, ref: ReleaseRef, obj: dict[str, Any]) -> Route | None:
        """The Route the object carries now."""


def _revision_of_backend(ref: ReleaseRef, name: str) -> str:
    return name.removeprefix(f"{ref.name}-")


class GatewayApiRouter:
    """An HTTPRoute `<release>` on the spec's gateway: the bundle's matches, weighted backendRefs
    to the revisions' Services and, in shadow stages, a RequestMirror filter to the candidate."""

    api_version = "gateway.networking.k8s.io/v1"
    kind = "HTTPRoute"

    def route_object(
        self, ref: ReleaseRef, spec: FineTuneReleaseSpec, route: Route, matches: list[RouteMatch]
    ) -> dict[str, Any]:
        gateway = spec.traffic.gateway
        assert gateway is not None  # the API requires it for this provider
        parent = {"name": gateway.name}
        if gateway.namespace:
            parent["namespace"] = gateway.namespace
        if gateway.section_name:
            parent["sectionName"] = gateway.section_name
        port = spec.serving.port
        rule: dict[str, Any] = {
            "backendRefs": [
                {"name": object_name(ref.name, revision), "port": port, "weight": weight}
                for revision, weight in route.weights
            ]
        }
        if matches:
            rule["matches"] = [m.to_wire() for m in matches]
        if route.mirror_to and route.mirror_percent:
            rule["filters"] = [
                {
                    "type": "RequestMirror",
                    "requestMirror": {
                        "backendRef": {
                            "name": object_name(ref.name, route.mirror_to),
                            "port": port,
                        },
                        "percent": route.mirror_percent,
                    },
                }
            ]
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": ref.metadata(ref.name),
            "spec": {"parentRefs": [parent], "rules": [rule]},
        }

    def read_route(self, ref: ReleaseRef, obj: dict[str, Any]) -> Route | None:
        rules = (obj.get("spec") or {}).get("rules") or []
        if not rules:
            return None
        rule = rules[0]
        weights = tuple(
            (_revision_of_backend(ref, b["name"]), int(b.get("weight", 1)))
            for b in rule.get("backendRefs") or []
        )
        mirror_to, percent = None, 0
        for f in rule.get("filters") or []:
            if f.get("type") == "RequestMirror":
                mirror = f["requestMirror"]
                mirror_to = _revision_of_backend(ref, mirror["backendRef"]["name"])
                percent = int(mirror.get("percent", 100))
        return Route(weights=weights, mirror_to=mirror_to, mirror_percent=percent)


class ReplicasRouter:
    """No mesh: one Service `<release>` over every revision's pods, so traffic follows the replica
    counts the planner sets. The Service records the intended split in an annotation, which is
    what `read_route` returns."""

    api_version = "v1"
    kind = "Service"

    def route_object(
        self, ref: ReleaseRef, spec: FineTuneReleaseSpec, route: Route, matches: list[RouteMatch]
    ) -> dict[str, Any]:
        metadata = ref.metadata(ref.name)
        metadata["annotations"] = {ROUTE_ANNOTATION: json.dumps([list(w) for w in route.weights])}
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata,
            "spec": {
                "selector": {RELEASE_LABEL: ref.name},
                "ports": [{"name": "http", "port": spec.serving.port, "targetPort": "http"}],
            },
        }

    def read_route(self, ref: ReleaseRef, obj: dict[str, Any]) -> Route | None:
        text = ((obj.get("metadata") or {}).get("annotations") or {}).get(ROUTE_ANNOTATION)
        if not text:
            return None
        return Route(
            weights=tuple((revision, int(weight)) for revision, weight in json.loads(text))
        )


ROUTERS: dict[str, Router] = {"gateway-api": GatewayApiRouter(), "replicas": ReplicasRouter()}
