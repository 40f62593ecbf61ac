"""The replicas traffic provider: one Service over every revision's pods, no mesh."""

from __future__ import annotations

import json
from typing import Any

from ftrelease.api.bundle import RouteMatch
from ftrelease.api.ownership import RELEASE_LABEL, ReleaseRef
from ftrelease.api.route import CAPABILITIES, Route
from ftrelease.api.spec import FineTuneReleaseSpec

ROUTE_ANNOTATION = "finetune.dev/route"


class ReplicasRouter:
    """No mesh: one Service `<release>` over every revision's pods, so traffic follows the replica
    counts the planner sets. The Service records the intended split in an annotation, which is
    what `read_route` returns."""

    api_version = "v1"
    kind = "Service"
    capabilities = CAPABILITIES["replicas"]

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

    def route_problem(self, obj: dict[str, Any]) -> str | None:
        return None  # the Service is the split: nothing in between to refuse it

    def read_route(self, ref: ReleaseRef, obj: dict[str, Any]) -> Route | None:
        text = ((obj.get("metadata") or {}).get("annotations") or {}).get(ROUTE_ANNOTATION)
        if not text:
            return None
        return Route(
            weights=tuple((revision, int(weight)) for revision, weight in json.loads(text))
        )
