"""What the operator benchmarks run on: the local control plane (KWOK nodes), the manifests
applied, a namespace with the models claim bound, and the operator as a real process under the
manifests' RBAC, without Prometheus (stages run on their clocks)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client, config

from tests.cluster.localcluster import (
    REPO_ROOT,
    LocalCluster,
    build_binaries,
    new_workdir,
    remove_workdir,
)
from tests.e2e.conftest import bind_models_claim
from tests.operator_process import OperatorProcess


@dataclass
class Platform:
    cluster: LocalCluster
    workdir: Path
    kubeconfig: Path  # the operator's ServiceAccount's
    operators: list[OperatorProcess] = field(default_factory=list)

    def operator(self, name: str = "operator") -> OperatorProcess:
        """Another operator replica (not started)."""
        process = OperatorProcess(self.kubeconfig, self.workdir, name=name)
        self.operators.append(process)
        return process


@contextmanager
def platform(
    prefix: str, namespace: str, node_count: int, capacity: dict[str, str]
) -> Iterator[Platform]:
    """The platform with one operator started (platform.operators[0]); all stopped after."""
    workdir = new_workdir(prefix)
    cluster = LocalCluster(build_binaries(), workdir, node_count=node_count, node_capacity=capacity)
    cluster.start()
    found = None
    try:
        cluster.kubectl("apply", "--server-side", "-k", str(REPO_ROOT / "manifests"))
        core = client.CoreV1Api(config.new_client_from_config(config_file=str(cluster.kubeconfig)))
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        bind_models_claim(core, namespace)
        kubeconfig = cluster.kubeconfig_for_service_account(
            "finetune-system", "finetune-release-operator"
        )
        found = Platform(cluster, workdir, kubeconfig)
        found.operator().start()
        yield found
    finally:
        for process in found.operators if found else []:
            process.stop()
        cluster.stop()
        remove_workdir(workdir)
