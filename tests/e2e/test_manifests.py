"""The manifests and documented objects that no other test puts through the real apiserver:
manifests/monitoring/ (the PodMonitor, against the Prometheus Operator's own CRD) and the objects
docs/kind.md applies; and the model-server scrape job's relabeling, run by a real Prometheus.

Covered elsewhere and not repeated here: `kubectl apply -k manifests/` (applied for real by the
`installed` fixture, dry-run by test_rollout), the examples (server-side dry run with strict field
validation through `kubectl finetune validate --server`, test_api_server). The first test makes
sure every YAML file under manifests/ is one of those or one of these."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ftrelease.api.ownership import RELEASE_LABEL, REVISION_LABEL, ReleaseRef
from ftrelease.api.revision import revision_of
from ftrelease.api.validation import validate_release
from ftrelease.serving.objects import deployment

from tests.api_cases import example_files
from tests.cluster.localcluster import REPO_ROOT, LocalCluster

pytestmark = pytest.mark.e2e

MANIFESTS = REPO_ROOT / "manifests"
MONITORING = MANIFESTS / "monitoring"
KIND_DOC = REPO_ROOT / "docs" / "kind.md"
PODMONITOR_CRD = "monitoring.coreos.com_podmonitors.yaml"  # in the cache, beside gateway-api/
JOB = "finetune-model-servers"


def load_all(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def kustomization_files(directory: Path) -> set[Path]:
    """The kustomization and the files (not directories) it lists."""
    resources = load_all(directory / "kustomization.yaml")[0]["resources"]
    files = {(directory / r).resolve() for r in resources}
    return {directory / "kustomization.yaml", *(f for f in files if f.is_file())}


def server_dry_run(cluster: LocalCluster, *args: str, input: str | None = None) -> str:
    """`kubectl apply --server-side --dry-run=server` (strict field validation, kubectl's
    default): every object is admitted, defaulted and validated, nothing is stored."""
    result = cluster.kubectl(
        "apply", "--server-side", "--dry-run=server", *args, input=input, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def apply_for_real(cluster: LocalCluster, docs: list[dict[str, Any]]) -> None:
    cluster.kubectl(
        "apply",
        "--server-side",
        "--field-manager=test-manifests",
        "-f",
        "-",
        input=yaml.safe_dump_all(docs),
    )


def test_every_yaml_under_manifests_is_checked_against_the_apiserver():
    checked = {
        *kustomization_files(MANIFESTS),  # test_rollout and the `installed` fixture
        *(p.resolve() for p in example_files()),  # test_api_server
        *kustomization_files(MONITORING),  # here
        MONITORING / "prometheus-scrape-config.yaml",  # not an object: run by Prometheus, here
        MANIFESTS / "argocd" / "argocd-cm-patch.yaml",  # a patch: applied as documented, here
    }
    found = {p.resolve() for p in MANIFESTS.rglob("*.y*ml")}
    assert found - {p.resolve() for p in checked} == set(), "add a check for these"


def test_the_argo_cd_patch_installs_the_health_check_into_argocd_cm(cluster: LocalCluster):
    """As docs/gitops.md says: `kubectl -n argocd patch configmap argocd-cm --type merge
    --patch-file manifests/argocd/argocd-cm-patch.yaml` on an Argo CD installation's argocd-cm
    (created here as an installation has it, with a setting of its own that must stay)."""
    cluster.kubectl("create", "namespace", "argocd", check=False)
    cluster.kubectl(
        "create", "configmap", "argocd-cm", "-n", "argocd", "--from-literal=url=https://cd"
    )
    patch = str(MANIFESTS / "argocd" / "argocd-cm-patch.yaml")
    cluster.kubectl(
        "-n", "argocd", "patch", "configmap", "argocd-cm", "--type", "merge", "--patch-file", patch
    )
    data = yaml.safe_load(
        cluster.kubectl("get", "configmap", "argocd-cm", "-n", "argocd", "-o", "yaml").stdout
    )["data"]
    key = "resource.customizations.health.finetune.dev_FineTuneRelease"
    assert data[key] == (MANIFESTS / "argocd" / "health.lua").read_text()
    assert data["url"] == "https://cd"


# ---- manifests/monitoring/ on the apiserver -----------------------------------------------------


@pytest.fixture(scope="module")
def podmonitor_crd(cluster: LocalCluster) -> LocalCluster:
    """The Prometheus Operator's PodMonitor CRD, which build.sh copies from its Go module."""
    path = cluster.bin_dir.parent / "prometheus-operator" / PODMONITOR_CRD
    assert path.is_file(), f"{path} is missing: tests/cluster/build.sh copies it there"
    apply = ["apply", "--server-side", "--force-conflicts", "--field-manager=ftrelease-harness"]
    cluster.kubectl(*apply, "-f", str(path))
    crd = "crd/podmonitors.monitoring.coreos.com"
    cluster.kubectl("wait", "--for=condition=Established", crd, "--timeout=60s")
    return cluster


def test_monitoring_kustomization_passes_a_server_side_dry_run(podmonitor_crd):
    podmonitor = load_all(MONITORING / "podmonitor.yaml")[0]
    namespace = podmonitor["metadata"]["namespace"]
    apply_for_real(
        podmonitor_crd, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}]
    )
    out = server_dry_run(podmonitor_crd, "-k", str(MONITORING))
    name = podmonitor["metadata"]["name"]
    assert f"podmonitor.monitoring.coreos.com/{name} serverside-applied (server dry run)" in out


def kind_doc_objects() -> list[list[dict[str, Any]]]:
    """The objects docs/kind.md pipes into `kubectl apply -f - <<'EOF'`, one list per command."""
    bodies = re.findall(r"kubectl apply -f - <<'EOF'\n(.*?)\nEOF\n", KIND_DOC.read_text(), re.S)
    return [[d for d in yaml.safe_load_all(body) if d] for body in bodies]


def test_kind_doc_objects_pass_a_server_side_dry_run(cluster):
    commands = kind_doc_objects()
    kinds = {d["kind"] for docs in commands for d in docs}
    assert {"GatewayClass", "Gateway"} <= kinds, "docs/kind.md no longer creates the Gateway"
    for docs in commands:
        # A dry run stores nothing, so the namespaces the objects go into must exist first.
        apply_for_real(cluster, [d for d in docs if d["kind"] == "Namespace"])
        out = server_dry_run(cluster, "-f", "-", input=yaml.safe_dump_all(docs))
        assert out.count("serverside-applied (server dry run)") == len(docs), out


def test_the_gateway_in_the_doc_is_the_one_the_examples_name():
    gateways = [d for docs in kind_doc_objects() for d in docs if d["kind"] == "Gateway"]
    named = {(g["metadata"]["name"], g["metadata"]["namespace"]) for g in gateways}
    for path in example_files():
        traffic = load_all(path)[0]["spec"]["traffic"]
        if traffic["provider"] == "gateway-api":
            gateway = traffic["gateway"]
            assert (gateway["name"], gateway["namespace"]) in named, path.name
    # Releases live in their own namespaces: the listener must accept routes from them.
    for gateway in gateways:
        for listener in gateway["spec"]["listeners"]:
            assert listener["allowedRoutes"]["namespaces"]["from"] == "All"


# ---- the scrape: PodMonitor and plain job agree, and select what the operator creates ----------


def meta_label(kubernetes_label: str, kind: str = "label") -> str:
    """Prometheus' Kubernetes discovery name for a pod label (invalid characters become `_`)."""
    return f"__meta_kubernetes_pod_{kind}_" + re.sub(r"[^a-zA-Z0-9_]", "_", kubernetes_label)


def scrape_job() -> dict[str, Any]:
    jobs = load_all(MONITORING / "prometheus-scrape-config.yaml")[0]["scrape_configs"]
    assert [j["job_name"] for j in jobs] == [JOB]
    return jobs[0]


def model_server_pods() -> list[tuple[str, str, dict[str, Any]]]:
    """(namespace, revision, pod) for each example, its pod template as the operator builds it."""
    pods = []
    for path in example_files():
        release, problems = validate_release(load_all(path)[0])
        assert release is not None, problems
        revision = revision_of(release.spec.bundle)
        name, namespace = release.metadata.name, release.metadata.namespace
        ref = ReleaseRef(name=name, namespace=namespace, uid="0")
        built = deployment(ref, revision, release.spec, release.spec.bundle, 1, "stable")
        template = built["spec"]["template"]
        pod = {
            "metadata": {**template["metadata"], "name": f"{name}-{revision}-7d9f8-x2k4q"},
            "spec": template["spec"],
        }
        pods.append((namespace, revision, pod))
    return pods


def test_the_podmonitor_selects_model_servers_and_copies_release_and_revision_as_the_job_does():
    podmonitor = load_all(MONITORING / "podmonitor.yaml")[0]
    spec = podmonitor["spec"]
    assert spec["selector"] == {"matchExpressions": [{"key": RELEASE_LABEL, "operator": "Exists"}]}
    assert spec["namespaceSelector"] == {"any": True}
    [endpoint] = spec["podMetricsEndpoints"]
    job = scrape_job()
    # The port the operator names on the container that measures answers, whichever the
    # runtime (the builtin server, or the response checker before vLLM); the admin port (review
    # samples) and vLLM's own port are never scraped.
    for _, _, pod in model_server_pods():
        ports = [p["name"] for c in pod["spec"]["containers"] for p in c["ports"]]
        assert ports.count("http") == 1 and set(ports) <= {"http", "admin", "vllm"}, ports
    assert endpoint["port"] == "http"
    assert endpoint["path"] == job["metrics_path"] == "/metrics"
    assert endpoint["interval"] == job["scrape_interval"]

    copies = [(tuple(r["sourceLabels"]), r["targetLabel"]) for r in endpoint["relabelings"]]
    assert ((meta_label(RELEASE_LABEL),), "release") in copies
    assert ((meta_label(REVISION_LABEL),), "revision") in copies
    # The plain job: the same copies, after keeping what the PodMonitor's selector and port keep.
    job_copies = [
        (tuple(r["source_labels"]), r["target_label"])
        for r in job["relabel_configs"]
        if "target_label" in r
    ]
    assert job_copies == copies
    keeps = [r for r in job["relabel_configs"] if r.get("action") == "keep"]
    assert keeps == [
        {
            "source_labels": [meta_label(RELEASE_LABEL, "labelpresent")],
            "regex": "true",
            "action": "keep",
        },
        {
            "source_labels": ["__meta_kubernetes_pod_container_port_name"],
            "regex": endpoint["port"],
            "action": "keep",
        },
    ]


def test_the_docs_copy_of_the_scrape_job_is_the_file():
    blocks = re.findall(r"```yaml\n(.*?)```", KIND_DOC.read_text(), re.S)
    documented = [yaml.safe_load(b) for b in blocks if "scrape_configs:" in b]
    assert documented == [{"scrape_configs": [scrape_job()]}]
