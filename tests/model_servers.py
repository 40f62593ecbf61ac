"""The builtin model server as a real local process, for tests that need one."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from tests.cluster.processes import ManagedProcess, free_port, wait_until

PORT_ATTEMPTS = 3  # a port free when chosen can be taken before the server binds it


class ModelServer:
    def __init__(self, workdir: Path, args: list[str]) -> None:
        self.workdir, self.args = workdir, args
        self._on_free_ports()

    def _on_free_ports(self) -> None:
        self.port, self.admin_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "ftrelease.modelserver", f"--port={self.port}"]
        self.process = ManagedProcess(
            "modelserver",
            [*command, f"--admin-port={self.admin_port}", *self.args],
            self.workdir / f"modelserver-{self.port}.log",
            env={"PYTHONUNBUFFERED": "1"},
        )
        self.client = httpx.Client(base_url=self.url, timeout=120)
        self.admin = httpx.Client(base_url=f"http://127.0.0.1:{self.admin_port}", timeout=30)

    def openai(self, **options):
        """The official OpenAI Python client, pointed at this server."""
        import openai

        return openai.OpenAI(base_url=f"{self.url}/v1", api_key="unused", **options)

    def start(self, wait_ready: bool = True) -> ModelServer:
        for attempt in range(PORT_ATTEMPTS):
            self.process.start()

            def up() -> bool:
                if not self.process.running():
                    return True  # said below
                response = self.client.get("/ready" if wait_ready else "/health")
                return response.status_code == 200

            wait_until("model server", up, timeout=120)
            if self.process.running():
                return self
            taken = "address already in use" in self.process.log_path.read_text(errors="replace")
            if not taken or attempt == PORT_ATTEMPTS - 1:
                self.process.check_running()
            self.stop()  # another process took a port between choosing and binding it
            self._on_free_ports()
        return self

    def complete(self, model: str, prompt: str, max_tokens: int = 12, **extra) -> dict:
        response = self.client.post(
            "/v1/completions",
            json={
                "model": model,
                "prompt": prompt,
                "max_tokens": max_tokens,
                "temperature": 0,
                **extra,
            },
        )
        assert response.status_code == 200, response.text
        return response.json()

    def text(self, model: str, prompt: str, max_tokens: int = 12) -> str:
        return self.complete(model, prompt, max_tokens)["choices"][0]["text"]

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples whose labels include `labels`."""
        from prometheus_client.parser import text_string_to_metric_families

        total = 0.0
        for family in text_string_to_metric_families(self.client.get("/metrics").text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total

    def stop(self) -> None:
        self.client.close()
        self.admin.close()
        self.process.stop()
