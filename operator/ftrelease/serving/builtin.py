"""The builtin runtime: this project's model server (ftrelease.modelserver), which measures its
own answers (ftrelease.checks). One container: the serving port (named http: the Service and
the scrape), the admin port (samples, never in the Service)."""

from __future__ import annotations

from typing import Any

from ftrelease import __version__
from ftrelease.api.bundle import Bundle
from ftrelease.api.spec import Serving

from .pod import BUNDLE_PATH, Mounts, Pod, admin_port, probe, runtime_image, with_resources

NAME = "builtin"
DEFAULT_IMAGE = f"ghcr.io/finetune-release/modelserver:{__version__}"


def args(
    serving: Serving, bundle: Bundle, mounts: Mounts, revision: str, release: str
) -> list[str]:
    """The arguments ftrelease.modelserver takes (its --help is the contract)."""
    artifact = bundle.artifact
    given = [
        "--host=0.0.0.0",
        f"--port={serving.port}",
        f"--model-name={bundle.routing.model_name}",
        f"--release={release}",
        f"--revision={revision}",
        f"--bundle={BUNDLE_PATH}",
        f"--admin-port={admin_port(serving)}",
    ]
    if artifact.type == "adapter":
        return [
            *given,
            f"--base={mounts.path(bundle.base_model.uri)}",
            f"--adapter={mounts.path(artifact.uri)}",
            f"--adapter-digest={artifact.digest}",
        ]
    return [*given, f"--merged={mounts.path(artifact.uri)}", f"--merged-digest={artifact.digest}"]


def pod(serving: Serving, bundle: Bundle, revision: str, release: str) -> Pod:
    mounts = Mounts()
    container: dict[str, Any] = {
        "name": "model",
        "image": runtime_image(serving, bundle, DEFAULT_IMAGE),
        "command": ["python", "-m", "ftrelease.modelserver"],
        "args": args(serving, bundle, mounts, revision, release),
        "ports": [
            {"name": "http", "containerPort": serving.port},
            {"name": "admin", "containerPort": admin_port(serving)},
        ],
        # Ready once the artifact's digest checked out and the model is loaded.
        "readinessProbe": probe("/ready", "http", 5),
        "livenessProbe": probe("/health", "http", 10, failures=6),
        "volumeMounts": mounts.mounts,
    }
    return Pod(containers=[with_resources(container, serving)], volumes=mounts.volumes)
