"""A revision's review samples, read from its pods through the apiserver's pod proxy: the admin
port (serving.port + 1) is never in the Service, so clients cannot read other users'
conversations, and the apiserver's RBAC (pods/proxy) decides who may. Used by `kubectl finetune
samples` and by the operator's incident records."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from ftrelease.api.ownership import RELEASE_LABEL, REVISION_LABEL

SAMPLES_PATH = "v1/samples"


@dataclass
class RevisionSamples:
    revision: str
    samples: list[dict[str, Any]] = field(default_factory=list)  # newest first, each with "pod"
    pods: int = 0  # running pods asked
    errors: list[str] = field(default_factory=list)  # "pod: why" for each that did not answer


def read_samples(
    api: client.ApiClient,
    namespace: str,
    release: str,
    revision: str,
    admin_port: int,
    *,
    limit: int,
    flagged: bool = False,
    timeout: float = 5.0,
) -> RevisionSamples:
    """The newest `limit` samples over the revision's running pods (`flagged`: of its flagged
    answers); a pod that does not answer is named in `errors`, the others still count."""
    selector = f"{RELEASE_LABEL}={release},{REVISION_LABEL}={revision}"
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items
    found = RevisionSamples(revision)
    for pod in pods:
        if pod.status.phase != "Running" or not pod.status.pod_ip:
            continue
        found.pods += 1
        name = pod.metadata.name
        try:
            data = _get_samples(api, namespace, f"{name}:{admin_port}", limit, flagged, timeout)
        except Exception as exc:
            found.errors.append(f"{name}: {_why(exc)}")
            continue
        found.samples += [{"pod": name, **sample} for sample in data]
    found.samples.sort(key=lambda s: s.get("time") or 0, reverse=True)
    del found.samples[limit:]
    return found


class ProxyError(Exception):
    pass


def _get_samples(
    api: client.ApiClient, namespace: str, target: str, limit: int, flagged: bool, timeout: float
) -> list[dict[str, Any]]:
    """GET /api/v1/namespaces/NS/pods/POD:PORT/proxy/v1/samples?limit=&flagged= (the client's
    generated proxy methods take no query)."""
    request = api.param_serialize(
        "GET",
        f"/api/v1/namespaces/{{namespace}}/pods/{{name}}/proxy/{SAMPLES_PATH}",
        path_params={"namespace": namespace, "name": target},
        query_params=[("limit", limit), ("flagged", "true" if flagged else "false")],
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*request, _request_timeout=timeout)
    response.read()
    if response.status != 200:
        text = (response.data or b"").decode(errors="replace").strip()[:200]
        raise ProxyError(f"HTTP {response.status}: {text}")
    return json.loads(response.data)["data"]


def _why(exc: Exception) -> str:
    if isinstance(exc, ProxyError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
