"""The vllm runtime: vLLM's OpenAI server, with the response checker (ftrelease.sidecar) in front
of it, which measures every answer as the builtin server measures its own. The Service and the
scrape reach the checker (port http); vLLM listens beside it on the pod (port vllm). An init
step checks the artifact's digest before vLLM starts; a mismatch keeps the pod from starting,
with the reason as the init container's termination message. vLLM's runtime LoRA API stays off."""

from __future__ import annotations

from typing import Any

from ftrelease.api.bundle import Bundle
from ftrelease.api.spec import Serving

from .pod import (
    BUNDLE_PATH,
    OPERATOR_IMAGE,
    Mounts,
    Pod,
    admin_port,
    probe,
    runtime_image,
    with_resources,
)

NAME = "vllm"
DEFAULT_IMAGE = "vllm/vllm-openai:v0.11.0"
LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # the values vLLM's --max-lora-rank takes


def upstream_port(serving: Serving) -> int:
    return serving.port + 2


def vllm_args(serving: Serving, bundle: Bundle, mounts: Mounts) -> list[str]:
    """The adapter as the one LoRA module, named as clients ask for it; or the merged model
    served under that name."""
    name, artifact = bundle.routing.model_name, bundle.artifact
    if artifact.type == "adapter":
        model = [
            f"--model={mounts.path(bundle.base_model.uri)}",
            "--enable-lora",
            f"--lora-modules={name}={mounts.path(artifact.uri)}",
            "--max-loras=1",
        ]
        if artifact.rank is not None:
            rank = next(r for r in LORA_RANKS if r >= artifact.rank)
            model.append(f"--max-lora-rank={rank}")
    else:
        model = [f"--model={mounts.path(artifact.uri)}", f"--served-model-name={name}"]
    return [*model, "--host=0.0.0.0", f"--port={upstream_port(serving)}"]


def checker_args(serving: Serving, bundle: Bundle, revision: str, release: str) -> list[str]:
    """The arguments ftrelease.sidecar takes (its --help is the contract)."""
    return [
        "--host=0.0.0.0",
        f"--port={serving.port}",
        f"--admin-port={admin_port(serving)}",
        f"--upstream=http://127.0.0.1:{upstream_port(serving)}",
        f"--model-name={bundle.routing.model_name}",
        f"--artifact={bundle.artifact.type}",
        f"--release={release}",
        f"--revision={revision}",
        f"--bundle={BUNDLE_PATH}",
    ]


def pod(serving: Serving, bundle: Bundle, revision: str, release: str) -> Pod:
    mounts = Mounts()
    args = vllm_args(serving, bundle, mounts)
    artifact = bundle.artifact
    verify: dict[str, Any] = {
        "name": "verify-artifact",
        "image": OPERATOR_IMAGE,
        "command": ["python", "-m", "ftrelease.checks.digest"],
        "args": [mounts.path(artifact.uri), artifact.digest],
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": mounts.mounts,
    }
    model: dict[str, Any] = {
        "name": "model",
        "image": runtime_image(serving, bundle, DEFAULT_IMAGE),
        "args": args,
        "env": [{"name": "VLLM_ALLOW_RUNTIME_LORA_UPDATING", "value": "False"}],
        "ports": [{"name": "vllm", "containerPort": upstream_port(serving)}],
        # Loading a large model takes minutes: liveness starts once it answers.
        "startupProbe": probe("/health", "vllm", 10, failures=90),
        "livenessProbe": probe("/health", "vllm", 10, failures=6),
        "volumeMounts": mounts.mounts,
    }
    checker: dict[str, Any] = {
        "name": "checker",
        "image": OPERATOR_IMAGE,
        "command": ["python", "-m", "ftrelease.sidecar"],
        "args": checker_args(serving, bundle, revision, release),
        "ports": [
            {"name": "http", "containerPort": serving.port},
            {"name": "admin", "containerPort": admin_port(serving)},
        ],
        # Ready when vLLM answers its /health and the bundle was read.
        "readinessProbe": probe("/ready", "http", 5),
        "livenessProbe": probe("/health", "http", 10, failures=6),
        "volumeMounts": [],
    }
    return Pod(
        containers=[with_resources(model, serving), checker],
        volumes=mounts.volumes,
        init_containers=[verify],
    )
