"""What every runtime's pod is made of (serving/<runtime>.py fill it in): its containers and
volumes, where a revision's files are inside it (the bundle's ConfigMap, and model URIs turned
into mounted paths: pvc://<claim>/<path> mounts the claim read-only, file:///<path> a host
directory, for local clusters; other schemes are passed to the runtime as they are), its ports
and probes, and the runtime's image."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ftrelease import __version__
from ftrelease.api.bundle import Bundle
from ftrelease.api.spec import Serving

# The operator's own image (ftrelease without torch): the response checker, the digest check
# and the built-in evaluator run from it.
OPERATOR_IMAGE = f"ghcr.io/finetune-release/operator:{__version__}"
BUNDLE_DIR = "/etc/finetune"
BUNDLE_FILE = "bundle.json"
BUNDLE_PATH = f"{BUNDLE_DIR}/{BUNDLE_FILE}"
MODELS_DIR = "/models"


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


def probe(path: str, port: str, period: int, failures: int = 3) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "failureThreshold": failures,
    }


@dataclass
class Pod:
    containers: list[dict[str, Any]]
    volumes: list[dict[str, Any]]
    init_containers: list[dict[str, Any]] = field(default_factory=list)


def admin_port(serving: Serving) -> int:
    """Review samples, beside the serving port: never in the Service, so clients cannot read
    other users' conversations."""
    return serving.port + 1


def runtime_image(serving: Serving, bundle: Bundle, default: str) -> str:
    """The bundle's pinned runtime image (part of the revision), or serving.image, or the
    runtime's default."""
    if bundle.runtime is not None:
        return bundle.runtime.image
    return serving.image or default


def with_resources(container: dict[str, Any], serving: Serving) -> dict[str, Any]:
    """The model's container with serving.resources (the GPUs are the model's)."""
    resources = serving.resources.to_wire()
    if resources.get("limits") or resources.get("requests"):
        container["resources"] = {k: v for k, v in resources.items() if v}
    return container
