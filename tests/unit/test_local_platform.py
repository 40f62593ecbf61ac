"""The local platform's pure parts: the pod network's address map, which pods the local kubelet
runs, how it maps a container's arguments, and how the gateway stand-in splits requests."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
import yaml
from ftrelease.api.ownership import ReleaseRef
from ftrelease.api.revision import revision_of
from ftrelease.api.validation import validate_release
from ftrelease.serving.objects import deployment

from tests.api_cases import load_example
from tests.cluster.gateway import Routing, pick
from tests.cluster.kubelet import image_repository, runnable
from tests.cluster.podnetwork import is_pod_ip, local_address, pod_ips


def test_pod_ips_are_reached_on_the_loopback_address_with_the_same_last_octets():
    assert local_address("198.18.3.7") == "127.18.3.7"
    assert local_address("198.18.255.254") == "127.18.255.254"
    assert is_pod_ip("198.18.0.1") and not is_pod_ip("10.244.0.5") and not is_pod_ip("x")
    with pytest.raises(ValueError, match="not in the local pod network"):
        local_address("10.244.0.5")  # a KWOK pod's address: nothing serves it
    first = pod_ips()[:3]
    assert first == ["198.18.0.1", "198.18.0.2", "198.18.0.3"]
    assert not any(a.endswith((".0", ".255")) for a in pod_ips()[:600])


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("ghcr.io/finetune-release/modelserver:0.1.0", "ghcr.io/finetune-release/modelserver"),
        ("ghcr.io/finetune-release/modelserver@sha256:ab", "ghcr.io/finetune-release/modelserver"),
        ("localhost:5000/modelserver", "localhost:5000/modelserver"),
        ("localhost:5000/modelserver:1", "localhost:5000/modelserver"),
    ],
)
def test_image_repository(image, repository):
    assert image_repository(image) == repository


OPERATOR = Path(__file__).resolve().parents[2] / "manifests" / "operator.yaml"


def pod_of(example: str, **serving) -> dict:
    doc = load_example(example)
    doc["spec"]["serving"].update(serving)
    release, problems = validate_release(doc)
    assert release is not None, problems
    built = deployment(
        ReleaseRef("r", "ns", "u"),
        revision_of(release.spec.bundle),
        release.spec,
        release.spec.bundle,
        1,
        "stable",
    )
    template = built["spec"]["template"]
    return {"metadata": {"name": "p", **template["metadata"]}, "spec": template["spec"]}


def test_the_local_kubelet_runs_the_builtin_runtime_and_leaves_other_images_to_kwok():
    assert runnable(pod_of("summarizer-merged-builtin.yaml"))
    assert not runnable(pod_of("support-bot-adapter-vllm.yaml"))
    # vLLM's pod (its digest check, the stand-in, the response checker) when the stand-in is named.
    stand_in = "ghcr.io/finetune-release/vllm-stand-in:local"
    assert runnable(pod_of("support-bot-adapter-vllm.yaml", image=stand_in))
    # The operator's own pods use its image too: they stay with KWOK (no second operator).
    [operator] = [d for d in yaml.safe_load_all(OPERATOR.read_text()) if d["kind"] == "Deployment"]
    assert not runnable({"metadata": {"name": "op"}, **operator["spec"]["template"]})
    assert not runnable(pod_of("summarizer-merged-builtin.yaml", image="example.com/other:1"))


def test_the_stand_in_splits_by_weight_and_mirrors_by_percent():
    rng = random.Random(3)
    routing = Routing(weights=[("stable", 75), ("canary", 25)], mirror="shadow", mirror_percent=10)
    picks = [pick(routing, rng) for _ in range(20_000)]
    answered = Counter(backend for backend, _ in picks)
    assert abs(answered["canary"] / 20_000 - 0.25) < 0.02
    assert abs(sum(m == "shadow" for _, m in picks) / 20_000 - 0.10) < 0.01
    # A zero weight gets nothing; an all-zero route sends nothing.
    routing = Routing(weights=[("stable", 100), ("canary", 0)])
    assert {pick(routing, rng)[0] for _ in range(2000)} == {"stable"}
    assert pick(Routing(weights=[("stable", 0)]), rng) == (None, None)
