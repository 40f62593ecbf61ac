"""The vllm runtime's pod, as generated (vLLM itself cannot run on these machines): vLLM behind
the response checker, which the Service and the scrape reach and which measures with the
release's labels; the artifact's digest checked before vLLM starts; runtime LoRA updating off;
the adapter's rank passed on; the runtime image from the bundle, pinned, part of the revision."""

from __future__ import annotations

import copy

from ftrelease.api.resource import FineTuneRelease
from ftrelease.api.revision import revision_of
from ftrelease.api.validation import validate_release
from ftrelease.checks.digest import main as digest_main
from ftrelease.serving.objects import revision_objects
from ftrelease.sidecar.__main__ import parser as sidecar_parser

from tests.api_cases import load_example
from tests.unit.test_serving_and_traffic import REF, by_kind

VLLM = "support-bot-adapter-vllm.yaml"
PINNED = "vllm/vllm-openai@sha256:" + "ab" * 32


def pod_of(doc: dict) -> dict:
    spec = FineTuneRelease.model_validate(doc).spec
    objects = by_kind(revision_objects(REF, "abc1234567", spec, spec.bundle, 2, "candidate"))
    return objects


def test_the_checker_fronts_vllm_with_the_release_labels_and_the_digest_is_checked_first():
    doc = load_example(VLLM)
    objects = pod_of(doc)
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    model, checker = pod["containers"]
    [verify] = pod["initContainers"]
    bundle = doc["spec"]["bundle"]

    # The checker is what the Service and the scrape reach (port http).
    [service_port] = objects["Service"]["spec"]["ports"]
    assert service_port["targetPort"] == "http"
    assert [p["name"] for p in checker["ports"]] == ["http", "admin"]
    assert "http" not in {p["name"] for p in model["ports"]}
    args = sidecar_parser().parse_args(checker["args"])  # exits on any argument it lacks
    assert (args.release, args.revision) == ("support-bot", "abc1234567")
    assert args.model_name == bundle["routing"]["modelName"] and args.artifact == "adapter"
    assert args.bundle == "/etc/finetune/bundle.json"
    assert {"name": "bundle", "mountPath": "/etc/finetune", "readOnly": True} in checker[
        "volumeMounts"
    ]
    vllm_port = next(p["containerPort"] for p in model["ports"] if p["name"] == "vllm")
    assert args.upstream == f"http://127.0.0.1:{vllm_port}"
    assert checker["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert "readinessProbe" not in model, "the checker's /ready asks vLLM's /health"

    # vLLM: the adapter as its one LoRA module, runtime updating off, the GPUs its own.
    assert f"--port={vllm_port}" in model["args"]
    assert "--enable-lora" in model["args"] and "--max-loras=1" in model["args"]
    assert {"name": "VLLM_ALLOW_RUNTIME_LORA_UPDATING", "value": "False"} in model["env"]
    assert model["resources"]["limits"]["nvidia.com/gpu"] == 1 and "resources" not in checker

    # The digest check runs on the same mounted artifact, before vLLM starts.
    adapter_path = next(a for a in model["args"] if a.startswith("--lora-modules=")).split("=")[-1]
    assert verify["command"] == ["python", "-m", "ftrelease.checks.digest"]
    assert verify["args"] == [adapter_path, bundle["artifact"]["digest"]]
    assert verify["volumeMounts"] == [m for m in model["volumeMounts"] if m["name"] != "bundle"]


def test_the_digest_check_fails_with_the_reason_on_a_mismatch(tmp_path, capsys):
    artifact = tmp_path / "adapter"
    artifact.mkdir()
    (artifact / "adapter_model.safetensors").write_bytes(b"weights")
    assert digest_main([str(artifact), "sha256:" + "0" * 64]) == 1
    assert "digest check failed" in capsys.readouterr().err
    from ftrelease.checks.digest import artifact_digest

    assert digest_main([str(artifact), artifact_digest(artifact)]) == 0


def test_the_adapter_rank_sizes_vllms_lora_slots():
    doc = load_example(VLLM)
    doc["spec"]["bundle"]["artifact"]["rank"] = 24
    model = pod_of(doc)["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert "--max-lora-rank=32" in model["args"]  # the next size vLLM takes


def test_the_runtime_image_is_part_of_the_revision():
    doc = load_example(VLLM)
    before = revision_of(FineTuneRelease.model_validate(doc).spec.bundle)
    pinned = copy.deepcopy(doc)
    pinned["spec"]["bundle"]["runtime"] = {"image": PINNED}
    model = pod_of(pinned)["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert model["image"] == PINNED
    assert revision_of(FineTuneRelease.model_validate(pinned).spec.bundle) != before
    upgraded = copy.deepcopy(pinned)
    upgraded["spec"]["bundle"]["runtime"]["image"] = PINNED.replace("ab", "cd")
    assert revision_of(FineTuneRelease.model_validate(upgraded).spec.bundle) != revision_of(
        FineTuneRelease.model_validate(pinned).spec.bundle
    )
    # Unpinned, or given twice: refused, naming the field.
    floating = copy.deepcopy(doc)
    floating["spec"]["bundle"]["runtime"] = {"image": "vllm/vllm-openai:latest"}
    _, problems = validate_release(floating)
    assert [p.path for p in problems] == ["spec.bundle.runtime.image"]
    twice = copy.deepcopy(pinned)
    twice["spec"]["serving"]["image"] = "vllm/vllm-openai:v0.11.0"
    _, problems = validate_release(twice)
    assert [p.path for p in problems] == ["spec.serving.image"]
