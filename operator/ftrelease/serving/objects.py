"""Per-revision objects, named `<release>-<revision>`: a Deployment, a Service and a ConfigMap
holding the bundle's prompt, output format and metadata (mounted into the pods). Pure builders:
plain dicts for server-side apply."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ftrelease.api.bundle import Bundle
from ftrelease.api.ownership import (
    RELEASE_LABEL,
    REVISION_LABEL,
    ROLE_LABEL,
    ReleaseRef,
    object_name,
)
from ftrelease.api.spec import FineTuneReleaseSpec

from .pod import BUNDLE_DIR, BUNDLE_FILE
from .runtimes import RUNTIMES

APPLIED_ANNOTATION = "finetune.dev/applied"


def selector_labels(release: str, revision: str) -> dict[str, str]:
    # Pod labels never change for a revision: promotion relabels no pod (so none restarts).
    return {RELEASE_LABEL: release, REVISION_LABEL: revision}


def _metadata(ref: ReleaseRef, revision: str, role: str) -> dict[str, Any]:
    return ref.metadata(
        object_name(ref.name, revision), {REVISION_LABEL: revision, ROLE_LABEL: role}
    )


def bundle_document(bundle: Bundle, revision: str) -> dict[str, Any]:
    """What the pods read from /etc/finetune/bundle.json, and what the operator reads back to
    know a revision's bundle."""
    return {"revision": revision, "bundle": bundle.to_wire()}


def config_map(ref: ReleaseRef, revision: str, bundle: Bundle, role: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(ref, revision, role),
        "data": {
            BUNDLE_FILE: json.dumps(bundle_document(bundle, revision), indent=2, sort_keys=True)
        },
    }


def service(ref: ReleaseRef, revision: str, spec: FineTuneReleaseSpec, role: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(ref, revision, role),
        "spec": {
            "selector": selector_labels(ref.name, revision),
            "ports": [{"name": "http", "port": spec.serving.port, "targetPort": "http"}],
        },
    }


def deployment(
    ref: ReleaseRef,
    revision: str,
    spec: FineTuneReleaseSpec,
    bundle: Bundle,
    replicas: int,
    role: str,
) -> dict[str, Any]:
    pod = RUNTIMES[spec.serving.runtime].pod(spec.serving, bundle, revision, ref.name)
    config_map = {"name": "bundle", "configMap": {"name": object_name(ref.name, revision)}}
    for container in pod.containers:  # the bundle.json every container of it may read
        mount = {"name": "bundle", "mountPath": BUNDLE_DIR, "readOnly": True}
        container["volumeMounts"] = [*container["volumeMounts"], mount]
    pod_spec: dict[str, Any] = {"containers": pod.containers, "volumes": [*pod.volumes, config_map]}
    if pod.init_containers:
        pod_spec["initContainers"] = pod.init_containers
    labels = selector_labels(ref.name, revision)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(ref, revision, role),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": ref.name, **labels}},
                "spec": pod_spec,
            },
        },
    }


def revision_objects(
    ref: ReleaseRef,
    revision: str,
    spec: FineTuneReleaseSpec,
    bundle: Bundle,
    replicas: int,
    role: str,
) -> list[dict[str, Any]]:
    """The ConfigMap first: the pods mount it. The Deployment carries a digest of all three
    (APPLIED_ANNOTATION), so the operator can tell they are in place without writing them again."""
    objects = [
        config_map(ref, revision, bundle, role),
        service(ref, revision, spec, role),
        deployment(ref, revision, spec, bundle, replicas, role),
    ]
    digest = hashlib.sha256(json.dumps(objects, sort_keys=True).encode()).hexdigest()[:16]
    objects[-1]["metadata"]["annotations"] = {APPLIED_ANNOTATION: digest}
    return objects


def applied_digest(deployment: dict[str, Any]) -> str | None:
    """The digest revision_objects put on a revision's Deployment (planned or observed)."""
    return (deployment["metadata"].get("annotations") or {}).get(APPLIED_ANNOTATION)
