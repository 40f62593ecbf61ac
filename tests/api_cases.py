"""Invalid FineTuneReleases, each one mutation of a valid example, with the field path that the
offline validator and the apiserver must both name. Shared by unit and e2e tests."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parents[1] / "manifests" / "examples"


def load_example(name: str = "support-bot-adapter-vllm.yaml") -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / name).read_text())


def example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.yaml"))


@dataclass(frozen=True)
class InvalidCase:
    id: str
    mutate: Callable[[dict[str, Any]], None]
    path: str  # the field path both validators must name
    example: str = "support-bot-adapter-vllm.yaml"

    def document(self) -> dict[str, Any]:
        doc = copy.deepcopy(load_example(self.example))
        self.mutate(doc)
        return doc


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation setting `a.b[1].c` to value (or deleting it when value is _DELETE)."""

    def mutate(doc: dict[str, Any]) -> None:
        parts: list[str | int] = []
        for token in path.replace("]", "").split("."):
            name, *indices = token.split("[")
            parts.append(name)
            parts.extend(int(i) for i in indices)
        target: Any = doc
        for part in parts[:-1]:
            target = target[part]
        if value is _DELETE:
            del target[parts[-1]]
        else:
            target[parts[-1]] = value

    return mutate


_DELETE = object()
_SECRET = {"secretKeyRef": {"name": "hooks", "key": "url"}}


def _stages(*stages: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return _set("spec.strategy.stages", list(stages))


def _metric(index: int, metric: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return _set(f"spec.strategy.analysis.metrics[{index}]", metric)


def _replicas_split_untrue(doc: dict[str, Any]) -> None:
    """A 1% stage with 2 replicas: one candidate pod of two is 50% of the traffic."""
    doc["spec"]["traffic"] = {"provider": "replicas"}
    doc["spec"]["serving"]["replicas"] = 2
    doc["spec"]["strategy"]["stages"] = [
        {"name": "canary-1", "weight": 1, "duration": "10m"},
        {"name": "full", "weight": 100},
    ]


def _replicas_provider_keeps_previous_warm(doc: dict[str, Any]) -> None:
    """Its Service selects every pod of the release: a kept pod would take live traffic."""
    doc["spec"]["traffic"] = {"provider": "replicas"}
    doc["spec"]["serving"]["replicas"] = 4
    doc["spec"]["strategy"]["stages"] = [{"name": "full", "weight": 100}]
    doc["spec"]["strategy"]["keepPreviousStable"] = {"replicas": 1}


def _one_replica_default_stages(doc: dict[str, Any]) -> None:
    doc["spec"]["traffic"] = {"provider": "replicas"}
    doc["spec"]["serving"]["replicas"] = 1
    doc["spec"]["strategy"].pop("stages")


def _replicas_with_mirror(doc: dict[str, Any]) -> None:
    doc["spec"]["traffic"] = {"provider": "replicas"}


CASES: list[InvalidCase] = [
    InvalidCase(
        "base-revision-branch",
        _set("spec.bundle.baseModel.revision", "main"),
        "spec.bundle.baseModel.revision",
    ),
    InvalidCase(
        "base-revision-tag",
        _set("spec.bundle.baseModel.revision", "v3.1"),
        "spec.bundle.baseModel.revision",
    ),
    InvalidCase(
        "base-revision-short-sha",
        _set("spec.bundle.baseModel.revision", "5f0b02c"),
        "spec.bundle.baseModel.revision",
    ),
    InvalidCase(
        "base-name-empty", _set("spec.bundle.baseModel.name", ""), "spec.bundle.baseModel.name"
    ),
    InvalidCase(
        "base-uri-no-scheme",
        _set("spec.bundle.baseModel.uri", "models/llama"),
        "spec.bundle.baseModel.uri",
    ),
    InvalidCase(
        "artifact-digest-short",
        _set("spec.bundle.artifact.digest", "sha256:abc123"),
        "spec.bundle.artifact.digest",
    ),
    InvalidCase(
        "artifact-digest-md5",
        _set("spec.bundle.artifact.digest", "md5:" + "a" * 32),
        "spec.bundle.artifact.digest",
    ),
    InvalidCase(
        "artifact-type-unknown",
        _set("spec.bundle.artifact.type", "lora"),
        "spec.bundle.artifact.type",
    ),
    InvalidCase("artifact-missing", _set("spec.bundle.artifact", _DELETE), "spec.bundle.artifact"),
    InvalidCase(
        "dataset-latest",
        _set("spec.bundle.dataset.version", "latest"),
        "spec.bundle.dataset.version",
    ),
    InvalidCase(
        "dataset-head", _set("spec.bundle.dataset.version", "HEAD"), "spec.bundle.dataset.version"
    ),
    InvalidCase(
        "dataset-filter-branch",
        _set("spec.bundle.dataset.filter", "git+https://git.example.com/f.git@main"),
        "spec.bundle.dataset.filter",
    ),
    InvalidCase(
        "training-digest",
        _set("spec.bundle.training.configDigest", "config-v2"),
        "spec.bundle.training.configDigest",
    ),
    InvalidCase(
        "training-seed-negative", _set("spec.bundle.training.seed", -1), "spec.bundle.training.seed"
    ),
    InvalidCase(
        "eval-score-string",
        _set("spec.bundle.evals.scores.accuracy", "high"),
        "spec.bundle.evals.scores.accuracy",
    ),
    InvalidCase(
        "eval-score-bool",
        _set("spec.bundle.evals.scores.accuracy", True),
        "spec.bundle.evals.scores.accuracy",
    ),
    InvalidCase(
        "output-schema-missing",
        _set("spec.bundle.prompt.outputFormat", {"type": "json-schema"}),
        "spec.bundle.prompt.outputFormat",
    ),
    InvalidCase(
        "output-pattern-missing",
        _set("spec.bundle.prompt.outputFormat", {"type": "regex"}),
        "spec.bundle.prompt.outputFormat",
    ),
    InvalidCase(
        "model-name-spaces",
        _set("spec.bundle.routing.modelName", "support bot"),
        "spec.bundle.routing.modelName",
    ),
    InvalidCase("routing-missing", _set("spec.bundle.routing", _DELETE), "spec.bundle.routing"),
    InvalidCase("bundle-unknown-field", _set("spec.bundle.colour", "blue"), "spec.bundle.colour"),
    InvalidCase(
        "stage-names-repeat",
        _stages({"name": "a", "weight": 10, "duration": "1m"}, {"name": "a", "weight": 100}),
        "spec.strategy.stages",
    ),
    InvalidCase(
        "stage-weights-decrease",
        _stages(
            {"name": "a", "weight": 10}, {"name": "b", "weight": 5}, {"name": "c", "weight": 100}
        ),
        "spec.strategy.stages",
    ),
    InvalidCase(
        "stage-weights-repeat",
        _stages(
            {"name": "a", "weight": 10}, {"name": "b", "weight": 10}, {"name": "c", "weight": 100}
        ),
        "spec.strategy.stages",
    ),
    InvalidCase(
        "stage-last-not-full",
        _stages({"name": "a", "weight": 10}, {"name": "b", "weight": 50}),
        "spec.strategy.stages",
    ),
    InvalidCase(
        "stage-mirror-after-weight",
        _stages(
            {"name": "a", "weight": 10}, {"name": "b", "mirror": 100}, {"name": "c", "weight": 100}
        ),
        "spec.strategy.stages",
    ),
    InvalidCase(
        "stage-weight-and-mirror",
        _stages({"name": "a", "weight": 10, "mirror": 50}, {"name": "c", "weight": 100}),
        "spec.strategy.stages[0]",
    ),
    InvalidCase(
        "stage-weight-over-100",
        _set("spec.strategy.stages[1].weight", 150),
        "spec.strategy.stages[1].weight",
    ),
    InvalidCase(
        "stage-duration-words",
        _set("spec.strategy.stages[0].duration", "5 minutes"),
        "spec.strategy.stages[0].duration",
    ),
    InvalidCase(
        "stage-name-not-dns",
        _set("spec.strategy.stages[1].name", "Canary_1"),
        "spec.strategy.stages[1].name",
    ),
    InvalidCase(
        "stage-approval-unknown",
        _set("spec.strategy.stages[2].approval", "boss"),
        "spec.strategy.stages[2].approval",
    ),
    InvalidCase("replicas-provider-mirror", _replicas_with_mirror, "spec.strategy.stages"),
    InvalidCase("replicas-split-untrue", _replicas_split_untrue, "spec.strategy.stages"),
    InvalidCase(
        "replicas-provider-keeps-previous-warm",
        _replicas_provider_keeps_previous_warm,
        "spec.strategy.keepPreviousStable.replicas",
    ),
    InvalidCase(
        "replicas-one-pod-default-stages", _one_replica_default_stages, "spec.strategy.stages"
    ),
    InvalidCase("gateway-missing", _set("spec.traffic.gateway", _DELETE), "spec.traffic.gateway"),
    InvalidCase(
        "analysis-interval-bare-number",
        _set("spec.strategy.analysis.interval", "30"),
        "spec.strategy.analysis.interval",
    ),
    InvalidCase(
        "analysis-alpha-zero",
        _set("spec.strategy.analysis.alpha", 0),
        "spec.strategy.analysis.alpha",
    ),
    InvalidCase(
        "analysis-min-samples-negative",
        _set("spec.strategy.analysis.minSamples", -5),
        "spec.strategy.analysis.minSamples",
    ),
    InvalidCase(
        "on-error-after",
        _set("spec.strategy.analysis.onError.after", "soon"),
        "spec.strategy.analysis.onError.after",
    ),
    InvalidCase(
        "on-error-action",
        _set("spec.strategy.analysis.onError.action", "ignore"),
        "spec.strategy.analysis.onError.action",
    ),
    InvalidCase(
        "metric-no-source",
        _metric(0, {"name": "errors", "judge": "sequential"}),
        "spec.strategy.analysis.metrics[0]",
    ),
    InvalidCase(
        "metric-unknown-template",
        _metric(0, {"name": "errors", "template": "latency-p99"}),
        "spec.strategy.analysis.metrics[0].template",
    ),
    InvalidCase(
        "metric-sequential-on-query",
        _metric(3, {"name": "escalations", "query": "sum(up)", "judge": "sequential"}),
        "spec.strategy.analysis.metrics[3].judge",
    ),
    InvalidCase(
        "metric-slow-without-bound",
        _metric(2, {"name": "slow", "template": "slow-requests"}),
        "spec.strategy.analysis.metrics[2].latencyBound",
    ),
    InvalidCase(
        "metric-threshold-without-bounds",
        _metric(3, {"name": "escalations", "query": "sum(up)", "judge": "threshold"}),
        "spec.strategy.analysis.metrics[3].judge",
    ),
    InvalidCase(
        "metric-names-repeat",
        _set("spec.strategy.analysis.metrics[1].name", "errors"),
        "spec.strategy.analysis.metrics",
    ),
    InvalidCase(
        "gate-unknown-score",
        _set("spec.gate.evals.minScores", {"helpfulness": 0.8}),
        "spec.gate.evals",
    ),
    InvalidCase(
        "gate-negative-regression",
        _set("spec.gate.evals.maxRegression.accuracy", -0.1),
        "spec.gate.evals.maxRegression",
    ),
    InvalidCase(
        "gate-negative-increase",
        _set("spec.gate.evals.maxIncrease", {"refusal_rate": -0.01}),
        "spec.gate.evals.maxIncrease",
    ),
    InvalidCase(
        "gate-negative-tolerance",
        _set("spec.gate.evals.tolerance", -0.5),
        "spec.gate.evals.tolerance",
    ),
    InvalidCase(
        "gate-deadline-not-a-duration",
        _set("spec.gate.evals.deadline", "ten minutes"),
        "spec.gate.evals.deadline",
    ),
    InvalidCase(
        "gate-names-a-score-the-builtin-evaluator-does-not-measure",
        _set("spec.bundle.evals.run", {"builtin": {"cases": {"configMap": {"name": "qa"}}}}),
        "spec.gate.evals",
    ),
    InvalidCase(
        "eval-run-with-two-evaluators",
        _set(
            "spec.bundle.evals.run",
            {
                "builtin": {"cases": {"configMap": {"name": "qa"}}},
                "container": {"image": "registry.example/evals:1"},
            },
        ),
        "spec.bundle.evals.run",
    ),
    InvalidCase(
        "eval-cases-from-two-places",
        _set(
            "spec.bundle.evals.run",
            {"builtin": {"cases": {"configMap": {"name": "qa"}, "uri": "pvc://models/qa.jsonl"}}},
        ),
        "spec.bundle.evals.run.builtin.cases",
    ),
    InvalidCase(
        "eval-cases-config-map-name-not-an-object-name",
        _set("spec.bundle.evals.run", {"builtin": {"cases": {"configMap": {"name": "QA cases"}}}}),
        "spec.bundle.evals.run.builtin.cases.configMap.name",
    ),
    InvalidCase("runtime-unknown", _set("spec.serving.runtime", "tgi"), "spec.serving.runtime"),
    InvalidCase(
        "canary-replicas-zero",
        _set("spec.serving.canaryReplicas", 0),
        "spec.serving.canaryReplicas",
    ),
    InvalidCase(
        "canary-replicas-word",
        _set("spec.serving.canaryReplicas", "half"),
        "spec.serving.canaryReplicas",
    ),
    InvalidCase("replicas-zero", _set("spec.serving.replicas", 0), "spec.serving.replicas"),
    InvalidCase("port-too-high", _set("spec.serving.port", 70000), "spec.serving.port"),
    InvalidCase(
        "history-limit-negative",
        _set("spec.strategy.revisionHistoryLimit", -1),
        "spec.strategy.revisionHistoryLimit",
    ),
    InvalidCase("paused-not-bool", _set("spec.paused", "yes"), "spec.paused"),
    InvalidCase("name-too-long", _set("metadata.name", "a" * 60), "metadata.name"),
    InvalidCase(
        "latency-bound-not-a-bucket",
        _metric(2, {"name": "slow", "template": "slow-requests", "latencyBound": "3s"}),
        "spec.strategy.analysis.metrics[2].latencyBound",
    ),
    InvalidCase(
        "runtime-image-not-pinned",
        _set("spec.bundle.runtime", {"image": "vllm/vllm-openai:latest"}),
        "spec.bundle.runtime.image",
    ),
    InvalidCase(
        "runtime-image-twice",
        lambda doc: (
            _set("spec.bundle.runtime", {"image": "vllm/vllm-openai@sha256:" + "ab" * 32})(doc),
            _set("spec.serving.image", "vllm/vllm-openai:v0.11.0")(doc),
        ),
        "spec.serving.image",
    ),
    InvalidCase(
        "escalation-rule-two-ways",
        _set("spec.bundle.prompt.escalation", {"jsonField": "escalate", "toolCall": "handoff"}),
        "spec.bundle.prompt.escalation",
    ),
    InvalidCase(
        "max-duration-below-duration",
        _stages(
            {"name": "canary-1", "weight": 1, "duration": "1h", "maxDuration": "30m"},
            {"name": "full", "weight": 100},
        ),
        "spec.strategy.stages[0].maxDuration",
    ),
    InvalidCase(
        "webhook-reason-unknown",
        _set(
            "spec.notifications",
            {"webhooks": [{"name": "oncall", "urlFrom": _SECRET, "reasons": ["Deployed"]}]},
        ),
        "spec.notifications.webhooks[0].reasons[0]",
    ),
    InvalidCase(
        "webhook-url-inline",
        _set("spec.notifications", {"webhooks": [{"name": "oncall", "url": "http://x"}]}),
        "spec.notifications.webhooks[0].url",  # not a field: URLs come from a Secret
    ),
    InvalidCase(
        "webhook-format-unknown",
        _set(
            "spec.notifications",
            {"webhooks": [{"name": "oncall", "urlFrom": _SECRET, "format": "teams"}]},
        ),
        "spec.notifications.webhooks[0].format",
    ),
    InvalidCase(
        "webhook-names-twice",
        _set(
            "spec.notifications",
            {"confirm": [{"name": "freeze", "urlFrom": _SECRET}] * 2},
        ),
        "spec.notifications.confirm",
    ),
    InvalidCase(
        "confirm-retry-not-a-duration",
        _set(
            "spec.notifications",
            {"confirm": [{"name": "freeze", "urlFrom": _SECRET, "retry": "soon"}]},
        ),
        "spec.notifications.confirm[0].retry",
    ),
]
