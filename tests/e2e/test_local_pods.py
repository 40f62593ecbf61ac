"""The local platform runs what the operator deploys: the builtin model server's pods run as
real processes of the local kubelet (tests/cluster/kubelet.py), with the operator's own pod
template (arguments, bundle ConfigMap, models claim, probes). These tests apply a revision's
objects as the operator builds them (serving.objects), without the operator."""

from __future__ import annotations

import time

import httpx
import pytest
from ftrelease.api.ownership import ReleaseRef
from ftrelease.api.revision import revision_of
from ftrelease.api.validation import validate_release
from ftrelease.serving.objects import revision_objects
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.api_cases import load_example
from tests.cluster.gateway import GatewayStandIn, completion
from tests.cluster.localcluster import LocalCluster
from tests.cluster.localprometheus import LocalPrometheus
from tests.cluster.podnetwork import local_address
from tests.cluster.processes import wait_until
from tests.e2e.conftest import Releases, TinyModels, bind_models_claim, release_doc
from tests.e2e.test_rollout import revision

pytestmark = [pytest.mark.e2e, pytest.mark.serve]

NAME = "support-bot"


def apply_revision(kube, namespace: str, doc: dict, replicas: int) -> tuple[str, str]:
    """Creates the revision's ConfigMap, Service and Deployment; returns (revision, name)."""
    release, problems = validate_release(doc)
    assert not problems, problems
    revision = revision_of(release.spec.bundle)
    ref = ReleaseRef(NAME, namespace, uid="not-owned")
    objects = revision_objects(ref, revision, release.spec, release.spec.bundle, replicas, "stable")
    for obj in objects:
        obj["metadata"].pop("ownerReferences", None)  # no release owns them here
    core, apps = client.CoreV1Api(kube), client.AppsV1Api(kube)
    config_map, service, deployment = objects
    core.create_namespaced_config_map(namespace, config_map)
    core.create_namespaced_service(namespace, service)
    apps.create_namespaced_deployment(namespace, deployment)
    return revision, deployment["metadata"]["name"]


def pods(kube, namespace: str, revision: str) -> list[client.V1Pod]:
    return (
        client.CoreV1Api(kube)
        .list_namespaced_pod(namespace, label_selector=f"finetune.dev/revision={revision}")
        .items
    )


def ready_endpoints(kube, namespace: str, service: str) -> list[str]:
    slices = (
        client.DiscoveryV1Api(kube)
        .list_namespaced_endpoint_slice(
            namespace, label_selector=f"kubernetes.io/service-name={service}"
        )
        .items
    )
    return sorted(
        address
        for piece in slices
        for endpoint in piece.endpoints or []
        if endpoint.conditions and endpoint.conditions.ready
        for address in endpoint.addresses
    )


def available(kube, namespace: str, name: str) -> int:
    status = client.AppsV1Api(kube).read_namespaced_deployment(name, namespace).status
    return status.available_replicas or 0


def pod_events(kube, namespace: str, pod: str) -> list[tuple[str, str]]:
    items = (
        client.CoreV1Api(kube)
        .list_namespaced_event(namespace, field_selector=f"involvedObject.name={pod}")
        .items
    )
    return [(e.reason, e.message) for e in items]


@pytest.fixture
def models_claim(kube, namespace: str, tiny_models: TinyModels) -> TinyModels:
    bind_models_claim(client.CoreV1Api(kube), namespace, tiny_models.root)
    return tiny_models


def test_servers_run_from_the_operators_pod_template_and_are_found_through_the_apiserver(
    kube, namespace, models_claim: TinyModels, cluster: LocalCluster, prometheus: LocalPrometheus
):
    doc = models_claim.use(load_example(), "a1")
    revision, name = apply_revision(kube, namespace, doc, replicas=2)

    # Running with an address first, Ready only once the server's readiness probe passes.
    unready_seen: list[bool] = []

    def running() -> bool:
        found = [p for p in pods(kube, namespace, revision) if p.status.pod_ip]
        for pod in found:
            ready = next(c.status for c in pod.status.conditions if c.type == "Ready")
            unready_seen.append(ready == "False" and pod.status.phase == "Running")
        return len(found) == 2

    wait_until("two pods with addresses", running, 60, interval=0.1)
    assert any(unready_seen), "a pod was Ready before its server could have loaded"
    assert available(kube, namespace, name) == 0
    wait_until("the Deployment Available", lambda: available(kube, namespace, name) == 2, 180)

    # The Service's EndpointSlices list exactly the pods' addresses, and each answers.
    addresses = sorted(p.status.pod_ip for p in pods(kube, namespace, revision))
    wait_until(
        "EndpointSlices with both pods ready",
        lambda: ready_endpoints(kube, namespace, name) == addresses,
        30,
    )
    for address in addresses:
        answer = httpx.post(
            f"http://{local_address(address)}:8000/v1/completions",
            json={"model": NAME, "prompt": "hello", "max_tokens": 3},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == NAME

    # The apiserver's pod proxy reaches each pod's admin port (not in the Service) through the
    # platform's pod network (tests/cluster/podtunnel.py), as on a cluster.
    core = client.CoreV1Api(kube)
    for pod in pods(kube, namespace, revision):
        answer = core.connect_get_namespaced_pod_proxy_with_path(
            f"{pod.metadata.name}:8001", namespace, "v1/samples", _preload_content=False
        )
        assert answer.status == 200 and answer.json()["object"] == "list"

    # Prometheus discovers both pods through the apiserver, labelled from the pod labels.
    prometheus.discover_pods(cluster.monitoring_kubeconfig())
    query = f'up{{namespace="{namespace}",release="{NAME}",revision="{revision}"}}'

    def both_scraped() -> bool:
        return sorted(r["value"][1] for r in prometheus.query(query)) == ["1", "1"]

    wait_until("both pods scraped", both_scraped, 60)

    # Deleting a pod stops its server; the ReplicaSet's replacement runs and becomes ready.
    victim = pods(kube, namespace, revision)[0]
    client.CoreV1Api(kube).delete_namespaced_pod(victim.metadata.name, namespace)

    def gone() -> bool:
        try:
            httpx.get(f"http://{local_address(victim.status.pod_ip)}:8000/health", timeout=2)
        except httpx.ConnectError:
            return victim.metadata.name not in {
                p.metadata.name for p in pods(kube, namespace, revision)
            }
        return False

    wait_until("the deleted pod's server stopped and the pod removed", gone, 60)
    wait_until("a replacement Available", lambda: available(kube, namespace, name) == 2, 180)


def test_a_digest_mismatch_keeps_the_pod_unready_with_the_servers_reason(
    kube, namespace, models_claim: TinyModels
):
    wrong = "sha256:" + "0" * 64
    doc = models_claim.use(load_example(), "a1", digest=wrong)
    revision, name = apply_revision(kube, namespace, doc, replicas=1)
    reasons: list[str] = []

    def reported() -> bool:
        found = pods(kube, namespace, revision)
        reasons[:] = [
            message
            for pod in found
            for reason, message in pod_events(kube, namespace, pod.metadata.name)
            if reason == "Unhealthy" and "Readiness" in message
        ]
        return any("digest mismatch" in m for m in reasons)

    wait_until("a readiness failure with the server's reason", reported, 120)
    message = next(m for m in reasons if "digest mismatch" in m)
    assert "503" in message and wrong in message, message
    # It stays so: never Ready, the Deployment never Available, no endpoint to send traffic to.
    for pod in pods(kube, namespace, revision):
        ready = next(c for c in pod.status.conditions if c.type == "Ready")
        assert ready.status == "False" and ready.reason == "ContainersNotReady"
    assert available(kube, namespace, name) == 0
    assert ready_endpoints(kube, namespace, name) == []


def test_a_pod_whose_volume_is_missing_waits_with_failed_mount(kube, namespace, models_claim):
    """The claim's PV exists but the ConfigMap the pod mounts does not: no process starts."""
    doc = models_claim.use(load_example(), "a1")
    release, _ = validate_release(doc)
    revision = revision_of(release.spec.bundle)
    objects = revision_objects(
        ReleaseRef(NAME, namespace, "x"), revision, release.spec, release.spec.bundle, 1, "stable"
    )
    deployment = objects[-1]
    deployment["metadata"].pop("ownerReferences", None)
    client.AppsV1Api(kube).create_namespaced_deployment(namespace, deployment)

    def failed_mount() -> bool:
        found = pods(kube, namespace, revision)
        return bool(found) and any(
            reason == "FailedMount" and "not found" in message.lower()
            for reason, message in pod_events(kube, namespace, found[0].metadata.name)
        )

    wait_until("a FailedMount Event", failed_mount, 60)
    pod = pods(kube, namespace, revision)[0]
    assert not pod.status.pod_ip
    try:
        client.CoreV1Api(kube).read_namespaced_config_map(deployment["metadata"]["name"], namespace)
        raise AssertionError("the ConfigMap should not exist")
    except ApiException as exc:
        assert exc.status == 404


def test_a_release_whose_artifact_digest_does_not_match_never_gets_traffic(
    kube, releases: Releases, tiny_models: TinyModels
):
    """Through the operator: the candidate's server refuses files whose digest is not the
    bundle's, its pod stays unready with the server's reason, and no request reaches it."""
    good = tiny_models.use(release_doc(stage_seconds=2), "a1")
    good["spec"]["serving"]["replicas"] = 1
    releases.create(good)
    stable = releases.wait_phase(NAME, "Promoted", timeout=180)["stableRevision"]
    wrong = "sha256:" + "1" * 64
    bad = tiny_models.use(good, "a2", digest=wrong)  # a2's files, a digest they do not have
    candidate = revision(bad)
    releases.patch(NAME, {"spec": {"bundle": {"artifact": bad["spec"]["bundle"]["artifact"]}}})
    namespace = releases.namespace
    with GatewayStandIn(kube, namespace, NAME, completion(NAME), rps=10) as gateway:
        reasons: list[str] = []

        def reported() -> bool:
            reasons[:] = [
                message
                for pod in pods(kube, namespace, candidate)
                for reason, message in pod_events(kube, namespace, pod.metadata.name)
                if reason == "Unhealthy" and "digest mismatch" in message
            ]
            return bool(reasons)

        wait_until("the candidate's pod unready with the server's reason", reported, 120)
        assert wrong in reasons[0]
        # The operator reads it from the pod too: the release says why it waits.
        releases.wait(NAME, "the reason in status", lambda s: "digest mismatch" in s["message"])
        end = time.monotonic() + 15
        while time.monotonic() < end:  # the stage's 2 seconds pass many times over
            assert releases.route_state(NAME) == (((stable, 100),), None, 0)
            assert available(kube, namespace, f"{NAME}-{candidate}") == 0
            assert releases.status(NAME)["stableRevision"] == stable
            time.sleep(0.5)
    assert gateway.answered(f"{NAME}-{stable}") > 50
    touched = {backend for backend, _ in gateway.sent} | {b for b, _ in gateway.mirrored}
    assert touched == {f"{NAME}-{stable}"}
