"""The operator's thin Kubernetes client: server-side apply, scale, delete, patch status, post
Events, and the lists that seed the cache. Nothing here decides anything; no write leaves a
replica that does not lead."""

from __future__ import annotations

import base64
import logging
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config, dynamic
from kubernetes.client.exceptions import ApiException

from ftrelease.api.ownership import RELEASE_LABEL, ReleaseRef
from ftrelease.api.resource import API_VERSION, GROUP, KIND, PLURAL, VERSION
from ftrelease.api.wire import apply_patch_text

log = logging.getLogger(__name__)

FIELD_MANAGER = "finetune-release-operator"
REVISION_KINDS = (("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "ConfigMap"))


def identity() -> str:
    """This replica: its pod (or host) and process."""
    return f"{os.environ.get('HOSTNAME') or socket.gethostname()}_{os.getpid()}"


def api_client() -> client.ApiClient:
    """In a pod, the service account; elsewhere $KUBECONFIG or ~/.kube/config. Its user agent
    names the replica, so the apiserver's audit log tells leader and standby apart."""
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        config.load_incluster_config()
        api = client.ApiClient()
    else:
        api = config.new_client_from_config(config_file=os.environ.get("KUBECONFIG"))
    api.user_agent = f"{FIELD_MANAGER}/{identity()}"
    return api


class NotLeader(RuntimeError):
    """A write refused because this replica does not hold the lease (or renewed it too long
    ago to be sure it still does)."""


class Kube:
    """`may_write` gates every write (the leader's lease); `write_timeout` bounds each one."""

    def __init__(
        self,
        api: client.ApiClient | None = None,
        may_write: Callable[[], bool] = lambda: True,
        write_timeout: float | None = None,
    ) -> None:
        self.api = api or api_client()
        self._dynamic = dynamic.DynamicClient(self.api)
        self._resources: dict[tuple[str, str], Any] = {}
        self._may_write = may_write
        self._write_timeout = write_timeout

    def resource(self, api_version: str, kind: str) -> Any:
        key = (api_version, kind)
        if key not in self._resources:
            self._resources[key] = self._dynamic.resources.get(api_version=api_version, kind=kind)
        return self._resources[key]

    def _writing(self) -> dict[str, Any]:
        if not self._may_write():
            raise NotLeader("not the leader: write refused")
        return {"_request_timeout": self._write_timeout} if self._write_timeout else {}

    # ---- reading (only to seed the cache; reconciles read the cache) -------------------------

    def list(
        self, api_version: str, kind: str, namespaces: list[str]
    ) -> tuple[list[dict[str, Any]], int]:
        """Every object of `kind` that a release owns (by label), or every release; and the
        oldest resourceVersion the lists were taken at (what they show is true as of then)."""
        selector = None if kind == KIND else RELEASE_LABEL
        resource = self.resource(api_version, kind)
        lists = [
            resource.get(namespace=namespace, label_selector=selector).to_dict()
            for namespace in (namespaces or [None])
        ]
        items = [item for found in lists for item in found["items"]]
        return items, min(int(found["metadata"]["resourceVersion"]) for found in lists)

    def pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return (
            self.resource("v1", "Pod")
            .get(namespace=namespace, label_selector=selector)
            .to_dict()["items"]
        )

    def pod_events(self, namespace: str, pods: list[str]) -> list[dict[str, Any]]:
        events = []
        for name in pods:
            found = self.resource("v1", "Event").get(
                namespace=namespace,
                field_selector=f"involvedObject.kind=Pod,involvedObject.name={name}",
            )
            events += found.to_dict()["items"]
        return events

    def config_maps(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        found = self.resource("v1", "ConfigMap").get(namespace=namespace, label_selector=selector)
        return found.to_dict()["items"]

    def secret_value(self, namespace: str, name: str, key: str) -> str:
        """One key of a Secret, read when needed (webhook URLs): never cached or logged."""
        try:
            secret = client.CoreV1Api(self.api).read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                raise LookupError(f"secret {namespace}/{name} not found") from exc
            raise
        value = (secret.data or {}).get(key)
        if value is None:
            raise LookupError(f"secret {namespace}/{name} has no key {key}")
        return base64.b64decode(value).decode()

    def exists(self, ref: ReleaseRef) -> bool:
        """Whether the release (this uid) is still there: one read, after a write found nothing."""
        try:
            found = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
                GROUP, VERSION, ref.namespace, PLURAL, ref.name
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return found["metadata"].get("uid") == ref.uid

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
                **self._writing(),
            )
            .to_dict()
        )

    def scale(self, namespace: str, name: str, replicas: int) -> dict[str, Any]:
        return self.api.sanitize_for_serialization(
            client.AppsV1Api(self.api).patch_namespaced_deployment(
                name, namespace, {"spec": {"replicas": replicas}}, **self._writing()
            )
        )

    def delete(
        self, api_version: str, kind: str, namespace: str, name: str, cascade: bool = False
    ) -> None:
        """`cascade`: what the object owns goes too (a Job's pods: the API's default for a Job
        is to orphan them)."""
        body = {"propagationPolicy": "Background"} if cascade else None
        try:
            self.resource(api_version, kind).delete(
                name=name, namespace=namespace, body=body, **self._writing()
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def patch_status(
        self, ref: ReleaseRef, status: dict[str, Any], resource_version: str | None
    ) -> dict[str, Any]:
        """With `resource_version`, only onto that version of the release (409 otherwise):
        status decided from an older release never overwrites a newer one."""
        patch: dict[str, Any] = {"status": status}
        if resource_version:
            patch["metadata"] = {"resourceVersion": resource_version}
        return client.CustomObjectsApi(self.api).patch_namespaced_custom_object_status(
            GROUP, VERSION, ref.namespace, PLURAL, ref.name, patch, **self._writing()
        )

    def remove_annotations(self, ref: ReleaseRef, keys: list[str]) -> dict[str, Any]:
        return client.CustomObjectsApi(self.api).patch_namespaced_custom_object(
            GROUP,
            VERSION,
            ref.namespace,
            PLURAL,
            ref.name,
            {"metadata": {"annotations": dict.fromkeys(keys)}},
            **self._writing(),
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
        client.CoreV1Api(self.api).create_namespaced_event(ref.namespace, body, **self._writing())
