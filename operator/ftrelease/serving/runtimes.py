"""Pod templates per runtime. `builtin` is this project's model server (ftrelease.modelserver);
`vllm` is vLLM's OpenAI server. Model URIs: pvc://<claim>/<path> mounts the claim read-only,
file:///<path> mounts a host directory (local clusters), other schemes are passed to the runtime
as they are."""

from __future__ import annotations

import re
from typing import Any

from ftrelease import __version__
from ftrelease.api.bundle import Bundle
from ftrelease.api.spec import Serving

BUNDLE_DIR = "/etc/finetune"
BUNDLE_FILE = "bundle.json"
MODELS_DIR = "/models"

DEFAULT_IMAGES = {
    "builtin": f"ghcr.io/finetune-release/modelserver:{__version__}",
    "vllm": "vllm/vllm-openai:v0.11.0",
}


class Mounts:
    """Turns model URIs into paths inside the container, collecting the volumes they need."""

    def __init__(self) -> None:
        self.volumes: list[dict[str, Any]] = []
        self.mounts: list[dict[str, Any]] = []

    def path(self, uri: str) -> str:
        scheme, _, rest = uri.partition("://")
        if scheme == "pvc":
            claim, _, sub = rest.partition("/")
            volume = _volume_name(f"pvc-{claim}")
            self._add(volume, {"persistentVolumeClaim": {"claimName": claim, "readOnly": True}})
            return f"{MODELS_DIR}/{volume}/{sub}".rstrip("/")
        if scheme == "file":
            host_path = "/" + rest.lstrip("/")
            volume = _volume_name(f"host-{len(self.volumes)}")
            self._add(volume, {"hostPath": {"path": host_path, "type": "Directory"}})
            return f"{MODELS_DIR}/{volume}"
        return uri

    def _add(self, name: str, source: dict[str, Any]) -> None:
        if any(v["name"] == name for v in self.volumes):
            return
        self.volumes.append({"name": name, **source})
        self.mounts.append({"name": name, "mountPath": f"{MODELS_DIR}/{name}", "readOnly": True})


def _volume_name(raw: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", raw.lower())[:63].strip("-")


def admin_port(serving: Serving) -> int:
    """The builtin server's admin port (review samples), beside the serving port: never in the
    Service, so clients cannot read other users' samples."""
    return serving.port + 1


def builtin_args(
    serving: Serving, bundle: Bundle, mounts: Mounts, revision: str, release: str
) -> list[str]:
    """The arguments ftrelease.modelserver takes (its --help is the contract)."""
    artifact = bundle.artifact
    args = [
        "--host=0.0.0.0",
        f"--port={serving.port}",
        f"--model-name={bundle.routing.model_name}",
        f"--release={release}",
        f"--revision={revision}",
        f"--bundle={BUNDLE_DIR}/{BUNDLE_FILE}",
        f"--admin-port={admin_port(serving)}",
    ]
    if artifact.type == "adapter":
        args += [
            f"--base={mounts.path(bundle.base_model.uri)}",
            f"--adapter={mounts.path(artifact.uri)}",
            f"--adapter-digest={artifact.digest}",
        ]
    else:
        args += [f"--merged={mounts.path(artifact.uri)}", f"--merged-digest={artifact.digest}"]
    return args


def vllm_args(serving: Serving, bundle: Bundle, mounts: Mounts) -> list[str]:
    """vLLM's OpenAI server: the adapter as a LoRA module named as clients ask for it, or the
    merged model served under that name."""
    name = bundle.routing.model_name
    if bundle.artifact.type == "adapter":
        model = [
            f"--model={mounts.path(bundle.base_model.uri)}",
            "--enable-lora",
            f"--lora-modules={name}={mounts.path(bundle.artifact.uri)}",
        ]
    else:
        model = [f"--model={mounts.path(bundle.artifact.uri)}", f"--served-model-name={name}"]
    return [*model, "--host=0.0.0.0", f"--port={serving.port}"]


def container_for(
    serving: Serving, bundle: Bundle, revision: str, release: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    mounts = Mounts()
    if serving.runtime == "builtin":
        args = builtin_args(serving, bundle, mounts, revision, release)
        command = ["python", "-m", "ftrelease.modelserver"]
        ready, live = "/ready", "/health"
    else:
        args = vllm_args(serving, bundle, mounts)
        command = None
        ready = live = "/health"
    container: dict[str, Any] = {
        "name": "model",
        "image": serving.image or DEFAULT_IMAGES[serving.runtime],
        "args": args,
        "ports": [{"name": "http", "containerPort": serving.port}],
        "readinessProbe": {"httpGet": {"path": ready, "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {
            "httpGet": {"path": live, "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "volumeMounts": list(mounts.mounts),
    }
    if command:
        container["command"] = command
    if serving.runtime == "builtin":
        container["ports"].append({"name": "admin", "containerPort": admin_port(serving)})
    resources = serving.resources.to_wire()
    if resources.get("limits") or resources.get("requests"):
        container["resources"] = {k: v for k, v in resources.items() if v}
    return container, list(mounts.volumes)
