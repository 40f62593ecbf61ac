"""Hypothesis strategies for FineTuneRelease documents: structured ones that are mostly valid
(to compare what the offline validator accepts with what the apiserver accepts) and mutations of
the examples that are mostly broken (to show the validator only ever reports problems)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

from tests.api_cases import load_example

HEX = "0123456789abcdef"
hex_string = lambda n: st.text(HEX, min_size=n, max_size=n)  # noqa: E731
digest = hex_string(64).map(lambda h: f"sha256:{h}")
durations = st.sampled_from(["30s", "1m", "5m", "10m", "1h", "1h30m", "90s"])
dns_label = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
score_names = st.sampled_from(["accuracy", "format_validity", "refusal_rate", "rougeL", "f1"])


def mostly(valid: st.SearchStrategy, junk: st.SearchStrategy) -> st.SearchStrategy:
    """Valid about six times in seven: most generated releases should pass, some should not."""
    return st.sampled_from([True, True, True, True, True, True, False]).flatmap(
        lambda ok: valid if ok else junk
    )


finite = st.floats(min_value=0, max_value=1, allow_nan=False, allow_infinity=False)


@st.composite
def stages(draw: st.DrawFn) -> list[dict[str, Any]]:
    weights = [*sorted(draw(st.sets(st.integers(0, 99), max_size=4))), 100]
    result: list[dict[str, Any]] = []
    if draw(st.booleans()):
        result.append(
            {"name": "shadow", "mirror": draw(st.integers(1, 100)), "duration": draw(durations)}
        )
    for i, weight in enumerate(weights):
        stage: dict[str, Any] = {"name": f"stage-{i}", "weight": weight}
        if draw(st.booleans()):
            stage["duration"] = draw(durations)
        if draw(st.booleans()):
            stage["approval"] = draw(st.sampled_from(["auto", "manual"]))
        result.append(stage)
    return result


metric = mostly(
    st.one_of(
        st.builds(
            lambda m: {"template": "error-rate", "margin": m}, st.floats(0, 2, allow_nan=False)
        ),
        st.just({"template": "format-invalid-rate", "judge": "sequential", "margin": 0}),
        st.builds(lambda d: {"template": "slow-requests", "latencyBound": d}, durations),
        st.just({"template": "tokens-per-request", "judge": "relative"}),
        st.builds(
            lambda mx: {
                "query": "sum(rate(x_total[{{interval}}]))",
                "judge": "threshold",
                "max": mx,
            },
            finite,
        ),
    ),
    st.just({"template": "refusal-rate", "judge": "threshold"}),  # junk: a threshold without bounds
)


@st.composite
def release_documents(draw: st.DrawFn) -> dict[str, Any]:
    scores = draw(st.dictionaries(score_names, finite, max_size=4))
    gate_names = st.sampled_from(sorted(scores) or ["accuracy"]) if scores else score_names
    metrics = draw(st.lists(metric, min_size=1, max_size=3))
    provider = draw(mostly(st.just("gateway-api"), st.just("replicas")))
    spec: dict[str, Any] = {
        "bundle": {
            "baseModel": {
                "name": draw(st.sampled_from(["acme/base", "org/model-7b"])),
                "revision": draw(
                    st.one_of(hex_string(40), digest, st.sampled_from(["main", "v1"]))
                ),
                "uri": draw(
                    st.sampled_from(["pvc://models/base", "s3://bucket/base", "models/base"])
                ),
            },
            "artifact": {
                "type": draw(st.sampled_from(["adapter", "merged"])),
                "uri": "pvc://models/artifact",
                "digest": draw(digest),
            },
            "dataset": {
                "name": "tickets",
                "version": draw(
                    mostly(st.sampled_from(["2026-11-20", "v3", "42"]), st.just("latest"))
                ),
            },
            "training": {"configDigest": draw(digest), "seed": draw(st.integers(0, 2**31))},
            "prompt": {"system": draw(st.text(max_size=40))},
            "evals": {"suite": "evals", "version": "v1", "scores": scores},
            "routing": {
                "modelName": draw(mostly(st.sampled_from(["bot", "team/bot:v2"]), st.just("a b")))
            },
        },
        "serving": {
            "runtime": draw(st.sampled_from(["builtin", "vllm"])),
            "replicas": draw(st.integers(1, 8)),
            "canaryReplicas": draw(st.one_of(st.just("auto"), st.integers(1, 4))),
        },
        "traffic": {"provider": provider},
        "strategy": {
            "stages": draw(stages()),
            "analysis": {
                "alpha": draw(st.sampled_from([0.01, 0.05, 0.1])),
                "minSamples": draw(st.integers(0, 1000)),
                "metrics": [{"name": f"m{i}", **m} for i, m in enumerate(metrics)],
            },
        },
    }
    if provider == "gateway-api":
        spec["traffic"]["gateway"] = {"name": "inference"}
    if draw(st.booleans()):
        spec["gate"] = {
            "evals": {"minScores": draw(st.dictionaries(gate_names, finite, max_size=2))}
        }
    return {
        "apiVersion": "finetune.dev/v1alpha1",
        "kind": "FineTuneRelease",
        "metadata": {"name": draw(dns_label)},
        "spec": spec,
    }


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated_examples(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(
        load_example(
            draw(
                st.sampled_from(
                    [
                        "support-bot-adapter-vllm.yaml",
                        "summarizer-merged-builtin.yaml",
                        "classifier-replicas.yaml",
                    ]
                )
            )
        )
    )
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = draw(json_values)
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(json_values)
        if not _paths(doc):
            break
    return doc
