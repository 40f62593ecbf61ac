"""The operator as a real local process (python -m ftrelease), for e2e tests."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from tests.cluster.processes import ManagedProcess, free_port, wait_until


class OperatorProcess:
    def __init__(self, kubeconfig: Path, workdir: Path, name: str = "operator") -> None:
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.name = name
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.process: ManagedProcess | None = None
        self.starts = 0
        self.prometheus_url = ""  # empty: the operator runs without analysis

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> None:
        assert self.process is None, "already running: stop or kill it first"
        self.starts += 1
        self.process = ManagedProcess(
            self.name,
            [
                sys.executable,
                "-m",
                "ftrelease",
                f"--metrics-port={self.metrics_port}",
                "--metrics-address=127.0.0.1",
                f"--liveness-port={self.liveness_port}",
                f"--prometheus-url={self.prometheus_url}",
            ],
            self.log_path,
            env={
                "KUBECONFIG": str(self.kubeconfig),
                "PYTHONUNBUFFERED": "1",
                "HOSTNAME": self.name,  # its identity in the Lease and on its Events
            },
        )
        self.process.start()

        def healthy() -> bool:
            self.process.check_running()
            return (
                httpx.get(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=2).status_code
                == 200
            )

        try:
            wait_until("operator /healthz", healthy, timeout=60)
        except Exception:
            self.stop()  # never leave a process behind a failed start
            raise

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text

    def rss_bytes(self) -> int:
        """The process's resident memory, from /proc."""
        assert self.process is not None and self.process.pid is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS in /proc status")

    def kill(self) -> None:
        """SIGKILL: no cleanup, as a crash or an OOM kill."""
        assert self.process is not None
        self.process.kill()
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def log_tail(self) -> str:
        return self.process.log_tail(60) if self.process else self.log_path.read_text()[-5000:]
