"""Session fixtures for the test platform: a real control plane and a real Prometheus, both on
127.0.0.1, started once per session and only when a test asks for them (marker `e2e`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client, config

from tests.cluster.localcluster import LocalCluster, build_binaries, new_workdir, remove_workdir
from tests.cluster.localprometheus import LocalPrometheus


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    # Any missing prerequisite (Go, the module proxy, a failed build) raises here with what to
    # install: an error, never a skip.
    bin_dir = build_binaries()
    workdir = new_workdir()
    local = LocalCluster(bin_dir=bin_dir, workdir=workdir)
    local.start()
    yield local
    local.stop()
    remove_workdir(workdir)


@pytest.fixture(scope="session")
def prometheus() -> Iterator[LocalPrometheus]:
    binary = build_binaries() / "prometheus"
    workdir = new_workdir("ftrelease-prometheus-")
    local = LocalPrometheus(workdir=workdir, binary=binary, scrape_interval="1s")
    local.start()
    yield local
    local.stop()
    remove_workdir(workdir)


@pytest.fixture(scope="session")
def kube(cluster: LocalCluster) -> client.ApiClient:
    """An admin API client for the local cluster."""
    return config.new_client_from_config(config_file=str(cluster.kubeconfig))


@pytest.fixture
def namespace(kube: client.ApiClient) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)
