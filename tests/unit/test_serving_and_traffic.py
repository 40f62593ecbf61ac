"""The objects a revision is served with, and how routes are written and read back."""

from __future__ import annotations

import json
import typing

from ftrelease.api.ownership import ReleaseRef
from ftrelease.api.resource import FineTuneRelease
from ftrelease.api.route import CAPABILITIES, Route
from ftrelease.api.spec import Traffic
from ftrelease.serving.objects import revision_objects
from ftrelease.traffic.routers import ROUTERS

from tests.api_cases import load_example

REF = ReleaseRef("support-bot", "ml", "uid-1")


def spec(example: str = "support-bot-adapter-vllm.yaml"):
    return FineTuneRelease.model_validate(load_example(example)).spec


def by_kind(objects):
    return {o["kind"]: o for o in objects}


def test_vllm_adapter_is_a_lora_module_named_as_clients_ask_for_it():
    s = spec()
    objects = by_kind(revision_objects(REF, "abc1234567", s, s.bundle, 2, "candidate"))
    deployment = objects["Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "--enable-lora" in container["args"]
    assert (
        "--lora-modules=support-bot=/models/pvc-models/support-bot/adapters/v8" in container["args"]
    )
    assert "--model=/models/pvc-models/llama-3.1-8b" in container["args"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {
        "name": "pvc-models",
        "persistentVolumeClaim": {"claimName": "models", "readOnly": True},
    } in volumes
    assert deployment["metadata"]["name"] == "support-bot-abc1234567"
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    # Pod labels do not carry the role: promotion must not restart pods.
    assert "finetune.dev/role" not in deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["metadata"]["labels"]["finetune.dev/role"] == "candidate"


def test_builtin_merged_model_gets_its_digest_and_the_bundle_mounted():
    s = spec("summarizer-merged-builtin.yaml")
    objects = by_kind(revision_objects(REF, "abc1234567", s, s.bundle, 3, "stable"))
    container = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "ftrelease.modelserver"]
    assert f"--merged-digest={s.bundle.artifact.digest}" in container["args"]
    assert "--bundle=/etc/finetune/bundle.json" in container["args"]
    assert {"name": "bundle", "mountPath": "/etc/finetune", "readOnly": True} in container[
        "volumeMounts"
    ]
    document = json.loads(objects["ConfigMap"]["data"]["bundle.json"])
    assert document["bundle"]["prompt"]["system"] == s.bundle.prompt.system
    assert objects["Service"]["spec"]["selector"] == {
        "finetune.dev/release": "support-bot",
        "finetune.dev/revision": "abc1234567",
    }


def test_gateway_route_round_trips_weights_mirror_and_matches():
    s = spec()
    router = ROUTERS["gateway-api"]
    route = Route.split("aaa", "bbb", 0, mirror=100)
    obj = router.route_object(REF, s, route, s.bundle.routing.matches)
    rule = obj["spec"]["rules"][0]
    assert obj["spec"]["parentRefs"] == [{"name": "inference", "namespace": "gateway-system"}]
    assert rule["matches"][0]["headers"][0] == {
        "type": "Exact",
        "name": "x-tenant",
        "value": "acme",
    }
    assert rule["filters"][0]["requestMirror"]["percent"] == 100
    assert router.read_route(REF, obj) == route


def test_replicas_route_is_one_service_over_every_revision():
    s = spec("classifier-replicas.yaml")
    router = ROUTERS["replicas"]
    route = Route.split("aaa", "bbb", 25)
    obj = router.route_object(REF, s, route, [])
    assert obj["kind"] == "Service"
    assert obj["spec"]["selector"] == {"finetune.dev/release": "support-bot"}
    assert router.read_route(REF, obj) == route


def test_every_provider_has_a_router_carrying_its_capabilities():
    providers = set(typing.get_args(Traffic.model_fields["provider"].annotation))
    assert set(ROUTERS) == set(CAPABILITIES) == providers
    for provider, router in ROUTERS.items():
        assert router.capabilities is CAPABILITIES[provider]


def test_a_gateway_refusing_the_current_route_is_a_route_problem_an_old_refusal_is_not():
    router = ROUTERS["gateway-api"]
    refused = {"type": "ResolvedRefs", "status": "False", "reason": "BackendNotFound"}
    route = {
        "metadata": {"generation": 4},
        "status": {
            "parents": [
                {
                    "parentRef": {"name": "inference"},
                    "conditions": [{"type": "Accepted", "status": "True"}],
                },
                {
                    "parentRef": {"name": "edge"},
                    "conditions": [refused | {"message": "no Service"}],
                },
            ]
        },
    }
    assert router.route_problem(route) == (
        "gateway edge reports ResolvedRefs=False (BackendNotFound): no Service"
    )
    refused["observedGeneration"] = 3  # about a route written before this one
    route["status"]["parents"][1]["conditions"] = [refused]
    assert router.route_problem(route) is None
    assert router.route_problem({"metadata": {"generation": 1}}) is None, "no status: unknown"
    assert ROUTERS["replicas"].route_problem(route) is None
