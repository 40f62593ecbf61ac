"""The gateway-api traffic provider: an HTTPRoute with weighted backends and a mirror filter."""

from __future__ import annotations

from typing import Any

from ftrelease.api.bundle import RouteMatch
from ftrelease.api.ownership import ReleaseRef, object_name
from ftrelease.api.route import CAPABILITIES, Route
from ftrelease.api.spec import FineTuneReleaseSpec


def _revision_of_backend(ref: ReleaseRef, name: str) -> str:
    return name.removeprefix(f"{ref.name}-")


class GatewayApiRouter:
    """An HTTPRoute `<release>` on the spec's gateway: the bundle's matches, weighted backendRefs
    to the revisions' Services and, in shadow stages, a RequestMirror filter to the candidate."""

    api_version = "gateway.networking.k8s.io/v1"
    kind = "HTTPRoute"
    capabilities = CAPABILITIES["gateway-api"]

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

    def route_problem(self, obj: dict[str, Any]) -> str | None:
        """A parent gateway's Accepted or ResolvedRefs condition False, for the route's current
        generation (an older one says nothing about what is written now)."""
        generation = (obj.get("metadata") or {}).get("generation")
        for parent in (obj.get("status") or {}).get("parents") or []:
            gateway = (parent.get("parentRef") or {}).get("name", "?")
            for condition in parent.get("conditions") or []:
                seen = condition.get("observedGeneration")
                current = seen is None or generation is None or seen >= generation
                if (
                    condition.get("type") in ("Accepted", "ResolvedRefs")
                    and condition.get("status") == "False"
                    and current
                ):
                    return (
                        f"gateway {gateway} reports {condition['type']}=False "
                        f"({condition.get('reason', '')}): {condition.get('message', '')}"
                    )
        return None
