"""A real Kubernetes control plane on 127.0.0.1, with fake nodes: etcd, kube-apiserver (RBAC,
service-account keys, TLS), kube-controller-manager, kube-scheduler, KWOK and the local kubelet.
KWOK keeps the nodes Ready and marks most scheduled pods Running and Ready without running
anything; the pods of the builtin model server really run, as local processes of the local
kubelet (kubelet.py), ready when their readiness probes pass. Deployments become Available and
Services get EndpointSlices from those pods' real states.

Binaries come from tests/cluster/build.sh (built once, cached outside the repo)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from .kubelet import KWOK_EXCLUSION
from .pki import CertPair, LocalCA, write_service_account_keys
from .podnetwork import NODE_IP
from .podtunnel import egress_config
from .processes import ManagedProcess, free_port, wait_until

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]

# What each fake node offers the scheduler; GPUs so that GPU-requesting pods schedule too.
NODE_CAPACITY = {"cpu": "32", "memory": "256Gi", "pods": "110", "nvidia.com/gpu": "8"}
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"


def build_binaries() -> Path:
    """Runs build.sh (a no-op when the cache is warm) and returns the cache's bin directory."""
    result = subprocess.run(
        ["bash", str(HERE / "build.sh")], stdout=subprocess.PIPE, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            "building the control-plane binaries failed (see the messages above); "
            "it needs Go >= 1.25 and the Go module proxy: `make cluster-binaries` reruns it"
        )
    return Path(result.stdout.strip().splitlines()[-1])


# Service accounts' requests (the operator's), once each, at their end; nobody else's.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    userGroups: [system:serviceaccounts]
  - level: None
"""


MONITORING_RBAC = """\
apiVersion: v1
kind: Namespace
metadata: {name: monitoring}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: prometheus, namespace: monitoring}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: prometheus-pods}
rules:
  - {apiGroups: [""], resources: [pods], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: prometheus-pods}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: prometheus-pods}
subjects: [{kind: ServiceAccount, name: prometheus, namespace: monitoring}]
"""


@dataclass
class LocalCluster:
    """The control plane in `workdir`. `start()` returns when nodes are Ready, the scheduler and
    controllers answer, and the Gateway API CRDs are established."""

    bin_dir: Path
    workdir: Path
    node_count: int = 2
    node_capacity: dict[str, str] = field(default_factory=lambda: dict(NODE_CAPACITY))
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def ca_cert(self) -> Path:
        return self.workdir / "pki" / "ca.crt"

    @property
    def audit_log(self) -> Path:
        """Every request from a service account (the operator's), as the apiserver saw it:
        verb, object, user agent, time. How tests and bench/scale count what the operator
        sends, independently of the operator."""
        return self.workdir / "audit.log"

    def audit_events(self) -> list[dict]:
        if not self.audit_log.exists():
            return []
        events = []
        for line in self.audit_log.read_text().splitlines():
            with contextlib.suppress(ValueError):  # a line being written
                events.append(json.loads(line))
        return events

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 180.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        for name in ("etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler", "kwok"):
            self.ports.setdefault(name, free_port())
        self._write_pki()
        try:
            self._start_etcd(timeout)
            self._start_pod_tunnel()
            self._start_apiserver(timeout)
            self._start_controller_manager()
            self._start_scheduler()
            self._start_kwok()
            self._start_kubelet()
            self._wait_for_components(timeout)
            self._register_nodes(timeout)
            self._install_crds(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stops every process this harness started, in reverse order, by pid."""
        for name in reversed(list(self.processes)):
            self.processes[name].stop()
        self.processes.clear()

    def restart_apiserver(self, timeout: float = 120.0) -> None:
        """Stops and starts kube-apiserver on the same port and etcd (state survives)."""
        self.processes.pop("apiserver").stop()
        self._start_apiserver(timeout)

    # ---- clients ---------------------------------------------------------------------------

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        cmd = [
            str(self.bin_dir / "kubectl"),
            "--kubeconfig",
            str(kubeconfig or self.kubeconfig),
            *args,
        ]
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(
                f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}"
            )
        return result

    def kubeconfig_for_service_account(self, namespace: str, name: str) -> Path:
        """A kubeconfig with a real token of the ServiceAccount (TokenRequest API), so a local
        process runs with exactly that ServiceAccount's RBAC, as its pod would."""
        token = self.kubectl(
            "create", "token", name, "-n", namespace, "--duration=4h"
        ).stdout.strip()
        path = self.workdir / f"kubeconfig-sa-{namespace}-{name}"
        self._write_kubeconfig(path, name, {"token": token})
        return path

    def monitoring_kubeconfig(self) -> Path:
        """The identity a cluster's Prometheus discovers pods with: the ServiceAccount
        monitoring/prometheus, allowed to list and watch pods and nothing else."""
        self.kubectl("apply", "-f", "-", input=MONITORING_RBAC)
        return self.kubeconfig_for_service_account("monitoring", "prometheus")

    def health(self) -> bool:
        with httpx.Client(verify=self._ssl_context()) as client:
            return client.get(f"{self.server}/readyz", timeout=5).status_code == 200

    # ---- internals -------------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_cert))
        ctx.load_cert_chain(str(self._admin.cert), str(self._admin.key))
        return ctx

    def _write_pki(self) -> None:
        pki = self.workdir / "pki"
        self._ca = LocalCA(pki)
        self._serving = self._ca.issue(
            "apiserver",
            common_name="kube-apiserver",
            server_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
            ),
            server_ips=("127.0.0.1",),
        )
        self._admin = self._ca.issue(
            "admin", common_name="admin", organizations=("system:masters",)
        )
        self._sa = write_service_account_keys(pki)
        self._write_kubeconfig(self.kubeconfig, "admin", _cert_credentials(self._admin))

    def _write_kubeconfig(self, path: Path, user: str, credentials: dict[str, str]) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_cert)},
                }
            ],
            "users": [{"name": user, "user": credentials}],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
            "current-context": "local",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)

    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> ManagedProcess:
        proc = ManagedProcess(name, argv, self.workdir / "logs" / f"{name}.log", env=env)
        proc.start()
        self.processes[name] = proc
        return proc

    def _start_etcd(self, timeout: float) -> None:
        client = f"http://127.0.0.1:{self.ports['etcd']}"
        peer = f"http://127.0.0.1:{self.ports['etcd-peer']}"
        proc = self._spawn(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                "--name=local",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=local={peer}",
                "--unsafe-no-fsync",  # test data; speed over durability
                "--log-level=warn",
            ],
        )

        def healthy() -> bool:
            proc.check_running()
            return httpx.get(f"{client}/health", timeout=2).json().get("health") == "true"

        wait_until("etcd", healthy, timeout)

    @property
    def pod_tunnel_socket(self) -> Path:
        # A Unix socket's path is limited to about 100 bytes: not under a deep workdir.
        return Path(tempfile.gettempdir()) / f"ftr-pods-{self.ports['apiserver']}.sock"

    def _start_pod_tunnel(self) -> None:
        """The apiserver's route into the pod network (podtunnel.py): its pod proxy works."""
        self._spawn(
            "pod-tunnel",
            [sys.executable, "-m", "tests.cluster.podtunnel", f"--socket={self.pod_tunnel_socket}"],
            env={"PYTHONPATH": str(REPO_ROOT)},
        )
        wait_until("the pod tunnel's socket", self.pod_tunnel_socket.exists, 30)

    def _start_apiserver(self, timeout: float) -> None:
        policy = self.workdir / "audit-policy.yaml"
        policy.write_text(AUDIT_POLICY)
        egress = self.workdir / "egress-selector.yaml"
        egress.write_text(egress_config(self.pod_tunnel_socket))
        proc = self._spawn(
            "apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.ports['apiserver']}",
                f"--tls-cert-file={self._serving.cert}",
                f"--tls-private-key-file={self._serving.key}",
                f"--client-ca-file={self.ca_cert}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={self._sa.cert}",
                f"--service-account-signing-key-file={self._sa.key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--service-cluster-ip-range=10.96.0.0/16",
                # The built-in `kubernetes` Service would point at 127.0.0.1, which the endpoint
                # reconciler refuses; nothing in the tests needs it.
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--profiling=false",
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
                "--audit-log-maxsize=0",
                f"--egress-selector-config-file={egress}",
            ],
        )

        def ready() -> bool:
            proc.check_running()
            return self.health()

        wait_until("kube-apiserver /readyz", ready, timeout)

    def _start_controller_manager(self) -> None:
        kubeconfig = str(self.kubeconfig)
        self._spawn(
            "controller-manager",
            [
                str(self.bin_dir / "kube-controller-manager"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports['controller-manager']}",
                "--leader-elect=false",
                f"--service-account-private-key-file={self._sa.key}",
                f"--root-ca-file={self.ca_cert}",
                "--use-service-account-credentials=false",
                # A busy 2-core machine can delay KWOK's heartbeats; a NotReady node would mark every
                # pod on it unready, and KWOK does not mark them ready again.
                "--node-monitor-grace-period=10m",
                f"--cert-dir={self.workdir / 'pki' / 'kcm'}",
            ],
        )

    def _start_scheduler(self) -> None:
        kubeconfig = str(self.kubeconfig)
        self._spawn(
            "scheduler",
            [
                str(self.bin_dir / "kube-scheduler"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports['scheduler']}",
                "--leader-elect=false",
                f"--cert-dir={self.workdir / 'pki' / 'scheduler'}",
            ],
        )

    def _kwok_stages(self) -> list[Path]:
        """KWOK's stages, its pod stages kept off the pods the local kubelet runs."""
        out = self.workdir / "kwok-stages"
        out.mkdir(exist_ok=True)
        paths = []
        for source in sorted((self.bin_dir.parent / "kwok-stages").glob("*.yaml")):
            stage = yaml.safe_load(source.read_text())
            if stage["spec"]["resourceRef"]["kind"] == "Pod":
                selector = stage["spec"].setdefault("selector", {})
                selector.setdefault("matchExpressions", []).append(KWOK_EXCLUSION)
            paths.append(out / source.name)
            paths[-1].write_text(yaml.safe_dump(stage))
        return paths

    def _start_kubelet(self) -> None:
        self._spawn(
            "kubelet",
            [
                sys.executable,
                "-m",
                "tests.cluster.kubelet",
                f"--kubeconfig={self.kubeconfig}",
                f"--workdir={self.workdir / 'kubelet'}",
            ],
            env={"PYTHONPATH": str(REPO_ROOT)},
        )

    def _start_kwok(self) -> None:
        stages = self._kwok_stages()
        self._spawn(
            "kwok",
            [
                str(self.bin_dir / "kwok"),
                f"--kubeconfig={self.kubeconfig}",
                "--manage-all-nodes=false",
                "--node-lease-duration-seconds=40",  # KWOK renews node leases: the nodes stay Ready
                f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
                "--cidr=10.244.0.1/16",  # pod IPs recorded in EndpointSlices; no traffic goes there
                f"--node-ip={NODE_IP}",
                f"--server-address=127.0.0.1:{self.ports['kwok']}",
                *[f"--config={path}" for path in stages],
            ],
        )

    def _wait_for_components(self, timeout: float) -> None:
        for name in ("controller-manager", "scheduler"):
            proc = self.processes[name]
            url = f"https://127.0.0.1:{self.ports[name]}/healthz"

            def healthy(proc: ManagedProcess = proc, url: str = url) -> bool:
                proc.check_running()
                return httpx.get(url, verify=False, timeout=2).status_code == 200

            wait_until(f"kube-{name} /healthz", healthy, timeout)
        # The service-account controller creating `default` proves the controllers run.
        wait_until(
            "the default ServiceAccount (kube-controller-manager)",
            lambda: self.kubectl("get", "serviceaccount", "default", check=False).returncode == 0,
            timeout,
        )

    def _register_nodes(self, timeout: float) -> None:
        nodes = [_fake_node(f"kwok-node-{i}", self.node_capacity) for i in range(self.node_count)]
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(nodes))

        def all_ready() -> bool:
            self.processes["kwok"].check_running()
            out = self.kubectl("get", "nodes", "-o", "json").stdout
            items = json.loads(out)["items"]
            ready = [
                n
                for n in items
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in n.get("status", {}).get("conditions", [])
                )
            ]
            return len(ready) == self.node_count

        wait_until(f"{self.node_count} KWOK nodes Ready", all_ready, timeout)

    def _install_crds(self, timeout: float) -> None:
        """Gateway API standard channel (server-side: the HTTPRoute CRD is too large for the
        last-applied annotation), then this project's CRDs from crds/."""
        files = sorted((self.bin_dir.parent / "gateway-api").glob("*.yaml"))
        files += sorted(
            p for p in (REPO_ROOT / "crds").glob("*.yaml") if p.name != "kustomization.yaml"
        )
        args = [arg for path in files for arg in ("-f", str(path))]
        self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=ftrelease-harness",
            *args,
        )
        self.kubectl(
            "wait", "--for=condition=Established", "crd", "--all", f"--timeout={int(timeout)}s"
        )

    # ---- detached mode (for humans: `python -m tests.cluster up` / `down`) -----------------

    def state(self) -> dict:
        return {
            "workdir": str(self.workdir),
            "bin_dir": str(self.bin_dir),
            "kubeconfig": str(self.kubeconfig),
            "server": self.server,
            "pids": {name: p.pid for name, p in self.processes.items()},
            "ports": self.ports,
        }


def _cert_credentials(pair: CertPair) -> dict[str, str]:
    return {"client-certificate": str(pair.cert), "client-key": str(pair.key)}


def _fake_node(name: str, capacity: dict[str, str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {FAKE_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def new_workdir(prefix: str = "ftrelease-cluster-") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def remove_workdir(path: Path) -> None:
    if path.exists() and os.environ.get("FTRELEASE_KEEP_CLUSTER_DIR") != "1":
        shutil.rmtree(path, ignore_errors=True)
