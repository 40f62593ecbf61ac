"""Fixtures for e2e tests that run the operator: installed with the manifests, running as a local
process with exactly their ServiceAccount's RBAC, and helpers to drive a release."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from ftrelease.api.resource import GROUP, PLURAL, VERSION
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.api_cases import load_example
from tests.cluster.localcluster import REPO_ROOT, LocalCluster
from tests.cluster.processes import wait_until
from tests.operator_process import OperatorProcess

OPERATOR_NAMESPACE = "finetune-system"
OPERATOR_ACCOUNT = "finetune-release-operator"


@pytest.fixture(scope="session")
def installed(cluster: LocalCluster) -> LocalCluster:
    """`kubectl apply -k manifests/`: CRD, namespace, RBAC, operator Deployment (KWOK runs no
    container, so the in-cluster operator never acts; the tests run it as a local process)."""
    cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", "-k", str(REPO_ROOT / "manifests")
    )
    return cluster


@pytest.fixture(scope="session")
def operator(installed: LocalCluster, tmp_path_factory) -> Iterator[OperatorProcess]:
    kubeconfig = installed.kubeconfig_for_service_account(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
    process = OperatorProcess(kubeconfig, tmp_path_factory.mktemp("operator"))
    process.start()
    yield process
    process.stop()


class Releases:
    """Create, change and read FineTuneReleases in one namespace."""

    def __init__(self, kube: client.ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(kube)
        self.core = client.CoreV1Api(kube)
        self.apps = client.AppsV1Api(kube)

    def create(self, doc: dict[str, Any]) -> dict[str, Any]:
        doc = copy.deepcopy(doc)
        doc["metadata"]["namespace"] = self.namespace
        return self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, doc
        )

    def get(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )

    def patch(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, patch
        )

    def status(self, name: str) -> dict[str, Any]:
        return self.get(name).get("status") or {}

    def route(self, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(
                "gateway.networking.k8s.io", "v1", self.namespace, "httproutes", name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def route_state(self, name: str) -> tuple[tuple[tuple[str, int], ...], str | None, int]:
        """(backend revisions and weights, mirrored revision, mirror percent) of the HTTPRoute."""
        route = self.route(name)
        assert route is not None
        rule = route["spec"]["rules"][0]
        weights = tuple(
            (b["name"].removeprefix(f"{name}-"), b["weight"]) for b in rule["backendRefs"]
        )
        mirror = next(
            (f["requestMirror"] for f in rule.get("filters") or [] if f["type"] == "RequestMirror"),
            None,
        )
        if mirror is None:
            return weights, None, 0
        return (
            weights,
            mirror["backendRef"]["name"].removeprefix(f"{name}-"),
            mirror.get("percent", 100),
        )

    def wait(
        self, name: str, what: str, check: Callable[[dict[str, Any]], bool], timeout: float = 60
    ) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def ready() -> bool:
            found.clear()
            found.update(self.status(name))
            return bool(check(found))

        try:
            wait_until(f"{name}: {what}", ready, timeout, interval=0.2)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; last status: {found}") from None
        return found

    def wait_route(self, name: str, expected: tuple, timeout: float = 30) -> None:
        """Rollbacks write status first, then the route: wait for the route to follow."""
        seen: list[Any] = []

        def matches() -> bool:
            seen[:] = [self.route_state(name)]
            return seen[0] == expected

        try:
            wait_until(f"{name}: route {expected}", matches, timeout, interval=0.2)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; route is {seen}") from None

    def wait_phase(self, name: str, phase: str, timeout: float = 60) -> dict[str, Any]:
        return self.wait(name, f"phase {phase}", lambda s: s.get("phase") == phase, timeout)

    def pod_uids(self, name: str, revision: str) -> set[str]:
        pods = self.core.list_namespaced_pod(
            self.namespace,
            label_selector=f"finetune.dev/release={name},finetune.dev/revision={revision}",
        )
        return {p.metadata.uid for p in pods.items if not p.metadata.deletion_timestamp}

    def revisions(self, name: str) -> set[str]:
        deployments = self.apps.list_namespaced_deployment(
            self.namespace, label_selector=f"finetune.dev/release={name}"
        ).items
        return {d.metadata.labels["finetune.dev/revision"] for d in deployments}

    def events(self, name: str) -> list[tuple[str, str]]:
        items = self.core.list_namespaced_event(
            self.namespace,
            field_selector=f"involvedObject.name={name},involvedObject.kind=FineTuneRelease",
        ).items
        return [
            (e.reason, e.message)
            for e in sorted(items, key=lambda e: e.metadata.creation_timestamp)
        ]

    def wait_event(self, name: str, reason: str, timeout: float = 15) -> list[str]:
        """The messages of `name`'s Events with `reason`, once there is one. The operator writes
        Events after status, so one may still be on its way when status shows the change."""
        found: list[str] = []

        def seen() -> bool:
            found[:] = [message for r, message in self.events(name) if r == reason]
            return bool(found)

        wait_until(f"{name}: a {reason} Event", seen, timeout)
        return found


@dataclass(frozen=True)
class TinyModels:
    """A models volume's contents: a tiny base model at base/ and LoRA adapters at
    adapters/<name>/, as real artifacts on this machine's disk."""

    root: Path
    adapters: tuple[str, ...]

    def digest(self, adapter: str) -> str:
        from ftrelease.checks.digest import artifact_digest

        return artifact_digest(self.root / "adapters" / adapter)

    def use(self, doc: dict[str, Any], adapter: str, digest: str | None = None) -> dict[str, Any]:
        """`doc` served by the builtin runtime from these models (claim `models`): its pods
        really run. `digest` overrides the adapter's real digest."""
        doc = copy.deepcopy(doc)
        spec = doc["spec"]
        spec["serving"]["runtime"] = "builtin"
        spec["serving"].pop("image", None)
        spec["serving"].pop("resources", None)
        spec["bundle"]["baseModel"]["uri"] = "pvc://models/base"
        spec["bundle"]["artifact"] = {
            "type": "adapter",
            "uri": f"pvc://models/adapters/{adapter}",
            "digest": digest or self.digest(adapter),
        }
        return doc


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> TinyModels:
    from tests.tiny_models import build_adapter, build_base

    root = tmp_path_factory.mktemp("models")
    base = build_base(root / "base")
    names = ("a1", "a2")
    for seed, name in enumerate(names, start=1):
        build_adapter(base, root / "adapters" / name, seed=seed)
    return TinyModels(root, names)


def bind_models_claim(
    core: client.CoreV1Api, namespace: str, host_path: Path = Path("/srv/models")
) -> None:
    """The examples load models from the claim `models`; bind one (to `host_path`, where the
    local kubelet's pods read them) so their pods schedule."""
    core.create_persistent_volume(
        client.V1PersistentVolume(
            metadata=client.V1ObjectMeta(name=f"{namespace}-models"),
            spec=client.V1PersistentVolumeSpec(
                capacity={"storage": "100Gi"},
                access_modes=["ReadOnlyMany"],
                storage_class_name="",
                host_path=client.V1HostPathVolumeSource(path=str(host_path)),
                claim_ref=client.V1ObjectReference(namespace=namespace, name="models"),
            ),
        )
    )
    core.create_namespaced_persistent_volume_claim(
        namespace,
        client.V1PersistentVolumeClaim(
            metadata=client.V1ObjectMeta(name="models"),
            spec=client.V1PersistentVolumeClaimSpec(
                access_modes=["ReadOnlyMany"],
                storage_class_name="",
                volume_name=f"{namespace}-models",
                resources=client.V1VolumeResourceRequirements(requests={"storage": "100Gi"}),
            ),
        ),
    )


@pytest.fixture
def releases(kube, namespace, operator, tiny_models: TinyModels) -> Releases:
    bind_models_claim(client.CoreV1Api(kube), namespace, tiny_models.root)
    return Releases(kube, namespace)


def release_doc(stage_seconds: int = 3, **spec_changes: Any) -> dict[str, Any]:
    """The support-bot example (adapter, Gateway API) with short stages."""
    doc = load_example()
    duration = f"{stage_seconds}s"
    doc["spec"]["strategy"]["stages"] = [
        {"name": "shadow", "mirror": 100, "duration": duration},
        {"name": "canary-1", "weight": 1, "duration": duration},
        {"name": "canary-10", "weight": 10, "duration": duration},
        {"name": "full", "weight": 100, "duration": duration},
    ]
    doc["spec"]["strategy"]["scaleDownDelay"] = "2s"
    doc["spec"]["strategy"]["abortScaleDownDelay"] = "2s"
    for key, value in spec_changes.items():
        target = doc["spec"]
        *parents, leaf = key.split(".")
        for part in parents:
            target = target[part]
        target[leaf] = value
    return doc


def gitops_sync(cluster: LocalCluster, releases: Releases, manifest: dict[str, Any]) -> None:
    """What a GitOps tool does with the manifest in Git: a server-side apply as its own field
    manager, forcing conflicts (Argo CD, Flux); then a client-side `kubectl apply` of it."""
    manifest = copy.deepcopy(manifest)
    manifest["metadata"]["namespace"] = releases.namespace
    text = yaml.safe_dump(manifest)
    cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=argocd-controller",
        "-f",
        "-",
        input=text,
    )
    cluster.kubectl("apply", "-f", "-", input=text)


def new_version(version: str) -> dict[str, Any]:
    """A merge patch that changes the bundle (its dataset version): a new revision."""
    return {"spec": {"bundle": {"dataset": {"version": version}}}}
