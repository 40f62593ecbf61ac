"""The test platform itself: what later e2e tests rely on, shown on the real components."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from tests.cluster.localcluster import LocalCluster
from tests.cluster.localprometheus import LocalPrometheus
from tests.cluster.processes import free_port, wait_until

pytestmark = pytest.mark.e2e

LABELS = {"app": "echo"}


def _deployment(replicas: int) -> client.V1Deployment:
    container = client.V1Container(
        name="echo",
        image="registry.invalid/echo:1",  # never pulled: KWOK nodes run no containers
        ports=[client.V1ContainerPort(container_port=8000, name="http")],
        resources=client.V1ResourceRequirements(limits={"cpu": "1", "nvidia.com/gpu": "1"}),
    )
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name="echo", labels=LABELS),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=LABELS),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=LABELS),
                spec=client.V1PodSpec(containers=[container]),
            ),
        ),
    )


def test_deployment_becomes_available_with_ready_pods_and_endpoints(kube, namespace):
    apps, core, discovery = (
        client.AppsV1Api(kube),
        client.CoreV1Api(kube),
        client.DiscoveryV1Api(kube),
    )
    apps.create_namespaced_deployment(namespace, _deployment(replicas=3))
    core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="echo"),
            spec=client.V1ServiceSpec(
                selector=LABELS, ports=[client.V1ServicePort(port=80, target_port="http")]
            ),
        ),
    )

    def available() -> bool:
        dep = apps.read_namespaced_deployment("echo", namespace)
        conditions = {c.type: c.status for c in dep.status.conditions or []}
        return conditions.get("Available") == "True" and dep.status.ready_replicas == 3

    wait_until("Deployment echo Available with 3 ready replicas", available, timeout=90)

    pods = core.list_namespaced_pod(namespace, label_selector="app=echo").items
    assert len(pods) == 3
    for pod in pods:
        assert pod.spec.node_name and pod.spec.node_name.startswith("kwok-node-"), (
            "scheduled onto a fake node"
        )
        assert pod.status.phase == "Running"
        assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True"
        assert pod.status.pod_ip, "KWOK assigns a pod IP"

    def ready_endpoints() -> list[str]:
        slices = discovery.list_namespaced_endpoint_slice(
            namespace, label_selector="kubernetes.io/service-name=echo"
        ).items
        return sorted(
            address
            for s in slices
            for e in s.endpoints or []
            if e.conditions.ready
            for address in e.addresses
        )

    wait_until(
        "3 ready endpoints in the Service's EndpointSlices", lambda: len(ready_endpoints()) == 3, 60
    )
    assert ready_endpoints() == sorted(p.status.pod_ip for p in pods)


def test_httproute_with_weights_and_mirror_is_accepted_and_read_back(kube, namespace):
    custom = client.CustomObjectsApi(kube)
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "support-bot"},
        "spec": {
            "parentRefs": [{"name": "inference", "namespace": "gateway-system"}],
            "rules": [
                {
                    "matches": [{"headers": [{"name": "x-tenant", "value": "acme"}]}],
                    "backendRefs": [
                        {"name": "support-bot-stable", "port": 8000, "weight": 90},
                        {"name": "support-bot-canary", "port": 8000, "weight": 10},
                    ],
                    "filters": [
                        {
                            "type": "RequestMirror",
                            "requestMirror": {
                                "backendRef": {"name": "support-bot-canary", "port": 8000},
                                "percent": 50,
                            },
                        }
                    ],
                }
            ],
        },
    }
    custom.create_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", namespace, "httproutes", route
    )
    stored = custom.get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", namespace, "httproutes", "support-bot"
    )
    rule = stored["spec"]["rules"][0]
    assert [(b["name"], b["weight"]) for b in rule["backendRefs"]] == [
        ("support-bot-stable", 90),
        ("support-bot-canary", 10),
    ]
    mirror = rule["filters"][0]["requestMirror"]
    assert mirror["backendRef"]["name"] == "support-bot-canary"
    assert mirror["percent"] == 50

    # The CRD's own validation is live: a mirror percent above 100 is refused.
    route["metadata"]["name"] = "bad-mirror"
    route["spec"]["rules"][0]["filters"][0]["requestMirror"]["percent"] = 150
    with pytest.raises(ApiException) as refused:
        custom.create_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", namespace, "httproutes", route
        )
    assert refused.value.status == 422
    assert "percent" in refused.value.body


def test_crd_cel_rule_rejects_a_bad_object_with_its_message(cluster: LocalCluster, kube, namespace):
    group = f"{namespace}.platform.test"  # unique per test run, so reruns never collide
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"windows.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "windows", "singular": "window", "kind": "Window"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "min": {"type": "integer"},
                                        "max": {"type": "integer"},
                                    },
                                    "x-kubernetes-validations": [
                                        {
                                            "rule": "self.min <= self.max",
                                            "message": "min must not exceed max",
                                        }
                                    ],
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    extensions = client.ApiextensionsV1Api(kube)
    extensions.create_custom_resource_definition(crd)
    try:
        cluster.kubectl(
            "wait", "--for=condition=Established", f"crd/windows.{group}", "--timeout=60s"
        )
        custom = client.CustomObjectsApi(kube)

        def create(name: str, lo: int, hi: int) -> dict:
            body = {
                "apiVersion": f"{group}/v1",
                "kind": "Window",
                "metadata": {"name": name},
                "spec": {"min": lo, "max": hi},
            }
            return custom.create_namespaced_custom_object(group, "v1", namespace, "windows", body)

        # Discovery of a just-established CRD can lag a moment behind the condition.
        wait_until("the Window kind is served", lambda: create("good", 1, 2) is not None, 30)
        with pytest.raises(ApiException) as refused:
            create("bad", 5, 1)
        assert refused.value.status == 422
        assert "min must not exceed max" in refused.value.body
        assert "spec" in refused.value.body  # the message carries the field path
    finally:
        extensions.delete_custom_resource_definition(f"windows.{group}")


def test_prometheus_scrapes_a_local_target_and_answers_promql(prometheus: LocalPrometheus):
    registry = CollectorRegistry()
    requests = Counter("demo_requests", "requests served", ["code"], registry=registry)
    in_flight = Gauge("demo_in_flight", "requests in flight", registry=registry)
    requests.labels(code="200").inc(40)
    requests.labels(code="500").inc(2)
    in_flight.set(7)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        prometheus.scrape_static("demo", [f"127.0.0.1:{port}"])

        def scraped() -> bool:
            return bool(prometheus.query('demo_in_flight{job="demo"}'))

        wait_until("prometheus has scraped the demo target", scraped, timeout=60)
        assert float(prometheus.query('up{job="demo"}')[0]["value"][1]) == 1
        total = prometheus.query('sum(demo_requests_total{job="demo"})')
        assert float(total[0]["value"][1]) == 42
        errors = prometheus.query(
            'sum(demo_requests_total{job="demo",code="500"}) / sum(demo_requests_total{job="demo"})'
        )
        assert float(errors[0]["value"][1]) == pytest.approx(2 / 42)

        # A later change in the target is seen on the next scrapes.
        requests.labels(code="500").inc(8)
        wait_until(
            "the new count is scraped",
            lambda: (
                float(prometheus.query('sum(demo_requests_total{job="demo"})')[0]["value"][1]) == 50
            ),
            timeout=30,
        )
    finally:
        server.shutdown()
        thread.join(timeout=5)
