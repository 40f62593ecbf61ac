"""The FineTuneRelease API offline: examples, rules, defaults, the revision, the generated CRD."""

from __future__ import annotations

import copy

import pytest
import yaml
from ftrelease.api.crd import CRD_FILE, render
from ftrelease.api.resource import FineTuneRelease
from ftrelease.api.revision import revision_of
from ftrelease.api.validation import validate_release

from tests.api_cases import CASES, example_files, load_example


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_examples_are_valid(path):
    release, problems = validate_release(yaml.safe_load(path.read_text()))
    assert problems == []
    assert release is not None


def test_there_are_at_least_three_examples_covering_the_runtimes_and_providers():
    specs = [
        FineTuneRelease.model_validate(yaml.safe_load(p.read_text())).spec for p in example_files()
    ]
    combos = {(s.bundle.artifact.type, s.serving.runtime, s.traffic.provider) for s in specs}
    assert ("adapter", "vllm", "gateway-api") in combos
    assert ("merged", "builtin", "gateway-api") in combos
    assert any(provider == "replicas" for _, _, provider in combos)


def test_at_least_thirty_distinct_invalid_cases():
    assert len({c.id for c in CASES}) == len(CASES) >= 30
    documents = [yaml.safe_dump(c.document(), sort_keys=True) for c in CASES]
    assert len(set(documents)) == len(documents), "each case is a different spec"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_invalid_spec_is_rejected_offline_naming_the_field(case):
    release, problems = validate_release(case.document())
    assert release is None
    assert case.path in [p.path for p in problems], problems
    assert all(p.message for p in problems)


def test_error_messages_say_what_is_allowed():
    doc = load_example()
    doc["spec"]["bundle"]["baseModel"]["revision"] = "main"
    doc["spec"]["bundle"]["artifact"]["type"] = "lora"
    _, problems = validate_release(doc)
    messages = {p.path: p.message for p in problems}
    assert "40-hex commit or sha256" in messages["spec.bundle.baseModel.revision"]
    assert "'adapter' or 'merged'" in messages["spec.bundle.artifact.type"]


def test_default_stages_are_shadow_1_10_100_and_skip_shadow_without_mirroring():
    doc = load_example()
    del doc["spec"]["strategy"]["stages"]
    spec = FineTuneRelease.model_validate(doc).spec
    assert [(s.name, s.mirror, s.weight, s.duration) for s in spec.stages] == [
        ("shadow", 100, None, "10m"),
        ("canary-1", None, 1, "30m"),
        ("canary-10", None, 10, "1h"),
        ("full", None, 100, None),
    ]
    # Where the split follows replica counts, each canary weight is at least one pod's share.
    doc["spec"]["traffic"] = {"provider": "replicas"}
    for replicas, weights in (
        (100, [1, 10, 100]),
        (20, [5, 10, 100]),
        (4, [25, 100]),
        (2, [50, 100]),
    ):
        doc["spec"]["serving"]["replicas"] = replicas
        spec = FineTuneRelease.model_validate(doc).spec
        assert [s.weight for s in spec.stages] == weights
        assert [spec.serving.canary_pods(w) for w in weights[:-1]] == [
            max(1, replicas * w // 100) for w in weights[:-1]
        ]


def replicas_release(replicas: int, weights: list[int], **traffic) -> dict:
    doc = load_example("classifier-replicas.yaml")
    doc["spec"]["serving"]["replicas"] = replicas
    doc["spec"]["traffic"].update(traffic)
    doc["spec"]["strategy"]["stages"] = [
        {"name": f"s{w}", "weight": w, "duration": "1m"} for w in weights
    ]
    return doc


@pytest.mark.parametrize(
    ("replicas", "weights", "refused"),
    [
        (2, [1, 100], "stage s1: weight 1% with 2 replicas sends 50% of traffic"),
        (4, [10, 100], "stage s10: weight 10% with 4 replicas sends 25% of traffic"),
        (4, [25, 90, 100], "stage s90: weight 90% with 4 replicas sends 100% of traffic"),
        (10, [1, 100], "stage s1: weight 1% with 10 replicas sends 10% of traffic"),
        (4, [25, 50, 100], None),
        (10, [10, 20, 50, 100], None),
        (100, [1, 10, 100], None),
    ],
)
def test_the_replicas_provider_refuses_weights_its_pods_cannot_give(replicas, weights, refused):
    _, problems = validate_release(replicas_release(replicas, weights))
    if refused is None:
        assert not problems
        return
    [(path, message)] = [(p.path, p.message) for p in problems]
    assert path == "spec.strategy.stages"
    assert refused in message and "approximateSplits" in message
    # Accepted when the release opts in to approximate splits.
    _, problems = validate_release(replicas_release(replicas, weights, approximateSplits=True))
    assert not problems


def test_the_replicas_provider_with_one_replica_and_default_stages_is_refused():
    doc = replicas_release(1, [100])
    del doc["spec"]["strategy"]["stages"]
    _, problems = validate_release(doc)
    assert [p.path for p in problems] == ["spec.strategy.stages"]
    assert "1 replicas cannot be split" in problems[0].message


def test_defaults_are_explicit_in_the_wire_form():
    spec = FineTuneRelease.model_validate(load_example("summarizer-merged-builtin.yaml")).spec
    wire = spec.to_wire()
    assert wire["serving"]["canaryReplicas"] == "auto"
    assert wire["strategy"]["analysis"]["onError"] == {"after": "10m", "action": "pause"}
    assert wire["bundle"]["routing"]["matches"] == []


# ---- revision ----------------------------------------------------------------------------------


def _bundle(doc):
    return FineTuneRelease.model_validate(doc).spec.bundle


def test_revision_is_ten_hex_characters():
    rev = revision_of(_bundle(load_example()))
    assert len(rev) == 10
    int(rev, 16)


def test_revision_is_stable_under_key_order_yaml_formatting_and_explicit_defaults():
    doc = load_example()
    base = revision_of(_bundle(doc))

    reordered = copy.deepcopy(doc)
    reordered["spec"]["bundle"] = dict(reversed(list(doc["spec"]["bundle"].items())))
    reordered["spec"]["bundle"]["evals"]["scores"] = dict(
        reversed(list(doc["spec"]["bundle"]["evals"]["scores"].items()))
    )
    assert revision_of(_bundle(reordered)) == base

    reformatted = yaml.safe_load(yaml.safe_dump(doc, default_flow_style=True, width=40))
    assert revision_of(_bundle(reformatted)) == base

    explicit = copy.deepcopy(doc)
    explicit["spec"]["bundle"]["routing"]["matches"][0]["headers"][0]["type"] = "Exact"
    assert revision_of(_bundle(explicit)) == base

    implicit_prompt = load_example("summarizer-merged-builtin.yaml")
    with_defaults = copy.deepcopy(implicit_prompt)
    del implicit_prompt["spec"]["bundle"]["prompt"]["outputFormat"]
    assert revision_of(_bundle(implicit_prompt)) == revision_of(_bundle(with_defaults))

    integer_score = copy.deepcopy(doc)
    integer_score["spec"]["bundle"]["evals"]["scores"]["perfect"] = 1
    float_score = copy.deepcopy(doc)
    float_score["spec"]["bundle"]["evals"]["scores"]["perfect"] = 1.0
    assert revision_of(_bundle(integer_score)) == revision_of(_bundle(float_score))


BUNDLE_CHANGES = {
    "base model name": ("baseModel.name", "acme/llama-3.2-8b-instruct"),
    "base model revision": ("baseModel.revision", "0" * 40),
    "base model uri": ("baseModel.uri", "pvc://models/other"),
    "artifact type": ("artifact.type", "merged"),
    "artifact uri": ("artifact.uri", "pvc://models/support-bot/adapters/v9"),
    "artifact digest": ("artifact.digest", "sha256:" + "1" * 64),
    "dataset name": ("dataset.name", "support-tickets-eu"),
    "dataset version": ("dataset.version", "2026-11-27"),
    "dataset filter": ("dataset.filter", "git+https://git.example.com/ml/filters.git@" + "a" * 40),
    "training config": ("training.configDigest", "sha256:" + "2" * 64),
    "training seed": ("training.seed", 4321),
    "system prompt": ("prompt.system", "You are the support assistant."),
    "output format": ("prompt.outputFormat", {"type": "json"}),
    "eval suite": ("evals.suite", "support-evals-2"),
    "eval version": ("evals.version", "v4"),
    "eval score": ("evals.scores.accuracy", 0.92),
    "model name": ("routing.modelName", "support-bot-2"),
    "routing match": ("routing.matches", [{"headers": [{"name": "x-tenant", "value": "globex"}]}]),
}


@pytest.mark.parametrize("change", BUNDLE_CHANGES, ids=str)
def test_every_bundle_field_changes_the_revision(change):
    path, value = BUNDLE_CHANGES[change]
    doc = load_example()
    base = revision_of(_bundle(doc))
    target = doc["spec"]["bundle"]
    *parents, leaf = path.split(".")
    for part in parents:
        target = target[part]
    target[leaf] = value
    assert revision_of(_bundle(doc)) != base


OUTSIDE_BUNDLE = {
    "replicas": ("serving", "replicas", 7),
    "runtime image": ("serving", "image", "registry.example.com/vllm:0.9"),
    "gateway": ("traffic", "gateway", {"name": "other"}),
    "stages": ("strategy", "stages", [{"name": "all", "weight": 100}]),
    "analysis": ("strategy", "analysis", {"alpha": 0.05}),
    "gate": ("gate", "evals", {}),
    "paused": ("spec", "paused", True),
}


@pytest.mark.parametrize("change", OUTSIDE_BUNDLE, ids=str)
def test_nothing_outside_the_bundle_changes_the_revision(change):
    section, key, value = OUTSIDE_BUNDLE[change]
    doc = load_example()
    base = revision_of(_bundle(doc))
    target = doc["spec"] if section == "spec" else doc["spec"][section]
    target[key] = value
    FineTuneRelease.model_validate(doc)  # still a valid release
    assert revision_of(_bundle(doc)) == base


# ---- the CRD -----------------------------------------------------------------------------------


def test_crd_file_is_generated_from_the_models():
    assert CRD_FILE.read_text() == render(), (
        "crds/finetunerelease.yaml is stale: run `python -m ftrelease.api.crd --write`"
    )


def test_crd_is_structural_and_carries_the_contract():
    crd = yaml.safe_load(CRD_FILE.read_text())
    version = crd["spec"]["versions"][0]
    assert crd["spec"]["names"]["shortNames"] == ["ftr"]
    assert crd["spec"]["names"]["categories"] == ["finetune"]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Phase",
        "Stage",
        "Weight",
        "Stable",
        "Candidate",
        "Age",
    ]
    text = yaml.safe_dump(crd)
    for forbidden in ("$ref", "anyOf", "allOf", "title:", "$defs"):
        assert forbidden not in text
