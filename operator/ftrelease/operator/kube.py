"""The operator's thin Kubernetes client: list what a release owns, server-side apply, scale,
delete, patch status, post Events. Nothing here decides anything."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config, dynamic
from kubernetes.client.exceptions import ApiException

from ftrelease.api.models import API_VERSION, GROUP, KIND, PLURAL, VERSION
from ftrelease.api.ownership import RELEASE_LABEL, ReleaseRef
from ftrelease.api.wire import apply_patch_text

log = logging.getLogger(__name__)

FIELD_MANAGER = "finetune-release-operator"
REVISION_KINDS = (("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "ConfigMap"))


def api_client() -> client.ApiClient:
    """In a pod, the service account; elsewhere $KUBECONFIG or ~/.kube/config."""
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        config.load_incluster_config()
        return client.ApiClient()
    return config.new_client_from_config(config_file=os.environ.get("KUBECONFIG"))


@dataclass
class Owned:
    """Everything a release owns, as the apiserver has it now."""

    deployments: dict[str, dict[str, Any]]
    config_maps: dict[str, dict[str, Any]]
    route: dict[str, Any] | None


class Kube:
    def __init__(self, api: client.ApiClient | None = None) -> None:
        self.api = api or api_client()
        self._dynamic = dynamic.DynamicClient(self.api)
        self._resources: dict[tuple[str, str], Any] = {}

    def resource(self, api_version: str, kind: str) -> Any:
        key = (api_version, kind)
        if key not in self._resources:
            self._resources[key] = self._dynamic.resources.get(api_version=api_version, kind=kind)
        return self._resources[key]

    # ---- reading ------------------------------------------------------------------------------

    def owned(self, ref: ReleaseRef, route_kind: tuple[str, str]) -> Owned:
        selector = f"{RELEASE_LABEL}={ref.name}"

        def by_name(api_version: str, kind: str) -> dict[str, dict[str, Any]]:
            items = (
                self.resource(api_version, kind)
                .get(namespace=ref.namespace, label_selector=selector)
                .to_dict()["items"]
            )
            return {
                item["metadata"]["name"]: item
                for item in items
                if any(
                    o.get("uid") == ref.uid for o in item["metadata"].get("ownerReferences") or []
                )
            }

        route = None
        try:
            found = self.resource(*route_kind).get(name=ref.name, namespace=ref.namespace).to_dict()
            owners = found["metadata"].get("ownerReferences") or []
            route = found if any(o.get("uid") == ref.uid for o in owners) else None
        except ApiException as exc:
            if exc.status != 404:
                raise
        return Owned(
            deployments=by_name("apps/v1", "Deployment"),
            config_maps=by_name("v1", "ConfigMap"),
            route=route,
        )

    # ---- writing ------------------------------------------------------------------------------

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply as the operator's field manager; a no-op when nothing changed."""
        meta = obj["metadata"]
        return (
            self.resource(obj["apiVersion"], obj["kind"])
            .server_side_apply(
                body=apply_patch_text(obj),
                name=meta["name"],
                namespace=meta["namespace"],
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )
            .to_dict()
        )

    def scale(self, namespace: str, name: str, replicas: int) -> None:
        client.AppsV1Api(self.api).patch_namespaced_deployment(
            name, namespace, {"spec": {"replicas": replicas}}
        )

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        try:
            self.resource(api_version, kind).delete(name=name, namespace=namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def patch_status(self, ref: ReleaseRef, status: dict[str, Any]) -> None:
        client.CustomObjectsApi(self.api).patch_namespaced_custom_object_status(
            GROUP, VERSION, ref.namespace, PLURAL, ref.name, {"status": status}
        )

    def remove_annotations(self, ref: ReleaseRef, keys: list[str]) -> None:
        client.CustomObjectsApi(self.api).patch_namespaced_custom_object(
            GROUP,
            VERSION,
            ref.namespace,
            PLURAL,
            ref.name,
            {"metadata": {"annotations": dict.fromkeys(keys)}},
        )

    def event(self, ref: ReleaseRef, kind: str, reason: str, message: str) -> None:
        now = datetime.now(UTC)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{ref.name}.", namespace=ref.namespace),
            involved_object=client.V1ObjectReference(
                api_version=API_VERSION,
                kind=KIND,
                name=ref.name,
                namespace=ref.namespace,
                uid=ref.uid,
            ),
            type=kind,
            reason=reason,
            message=message[:1024],
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=client.V1EventSource(component=FIELD_MANAGER),
            reporting_component=FIELD_MANAGER,
            reporting_instance=os.environ.get("HOSTNAME", FIELD_MANAGER),
        )
        client.CoreV1Api(self.api).create_namespaced_event(ref.namespace, body)
