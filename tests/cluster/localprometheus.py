"""Prometheus (built by build.sh, with Kubernetes service discovery) on 127.0.0.1, scraping what
the test configures:
static targets, or the local cluster's model-server pods found with `kubernetes_sd_configs` as a
cluster's Prometheus finds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from .podnetwork import PROMETHEUS_RELABELING
from .processes import ManagedProcess, free_port, wait_until

SCRAPE_JOB = (
    Path(__file__).resolve().parents[2] / "manifests/monitoring/prometheus-scrape-config.yaml"
)


@dataclass
class LocalPrometheus:
    workdir: Path
    binary: Path  # build_binaries() / "prometheus"
    scrape_interval: str = "1s"
    port: int = 0
    scrape_configs: list[dict[str, Any]] = field(default_factory=list)
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "prometheus.yml"

    def start(self, timeout: float = 60.0) -> None:
        if not self.binary.is_file():
            raise RuntimeError(
                f"{self.binary} is missing: `make cluster-binaries` builds Prometheus with the "
                "control plane (tests/cluster/build.sh)"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self._write_config()
        self.process = ManagedProcess(
            "prometheus",
            [
                str(self.binary),
                f"--config.file={self.config_path}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                "--web.enable-lifecycle",  # POST /-/reload picks up new scrape configs
                "--log.level=warn",
            ],
            self.workdir / "prometheus.log",
        )
        self.process.start()

        def ready() -> bool:
            self.process.check_running()
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200

        wait_until("prometheus /-/ready", ready, timeout)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def configure(self, scrape_configs: list[dict[str, Any]]) -> None:
        """Replaces the scrape configs and reloads Prometheus."""
        self.scrape_configs = scrape_configs
        self._write_config()
        response = httpx.post(f"{self.url}/-/reload", timeout=10)
        response.raise_for_status()

    def scrape_static(self, job: str, targets: list[str]) -> None:
        """Convenience: one job scraping `targets` (host:port on 127.0.0.1)."""
        others = [c for c in self.scrape_configs if c["job_name"] != job]
        self.configure([*others, {"job_name": job, "static_configs": [{"targets": targets}]}])

    def discover_pods(self, kubeconfig: Path) -> None:
        """Runs the scrape job that manifests/monitoring/ ships for a cluster's Prometheus:
        pods found with `kubernetes_sd_configs` through the apiserver (`kubeconfig`: an
        identity that may list and watch pods), their labels copied to `release` and
        `revision`. Two changes only: the pod network stand-in's relabeling goes first (pod IPs
        are reached on loopback), and the tests' scrape interval."""
        shipped = yaml.safe_load(SCRAPE_JOB.read_text())["scrape_configs"][0]
        job = {
            **shipped,
            "scrape_interval": self.scrape_interval,
            "kubernetes_sd_configs": [{"role": "pod", "kubeconfig_file": str(kubeconfig)}],
            "relabel_configs": [*PROMETHEUS_RELABELING, *shipped["relabel_configs"]],
        }
        others = [c for c in self.scrape_configs if c["job_name"] != job["job_name"]]
        self.configure([*others, job])

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query; returns Prometheus' `data.result` list or raises with its error."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus query failed: {body.get('error', response.text)}")
        return body["data"]["result"]

    def _write_config(self) -> None:
        config = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,  # must not exceed the interval
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": self.scrape_configs,
        }
        self.config_path.write_text(yaml.safe_dump(config))
