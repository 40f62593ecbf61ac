"""The FineTuneRelease API (group finetune.dev, v1alpha1): pydantic models are the single source
of truth. The CRD in crds/ is generated from them (`python -m ftrelease.api.crd`), and every
cross-field rule below exists twice from one place: a Python validator and the CEL rule with the
same message in `model_config["json_schema_extra"]`, so `kubectl apply` and `kubectl finetune
validate` refuse the same specs with the same words."""

from __future__ import annotations

import itertools
import re
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator
from pydantic.alias_generators import to_camel

from .durations import parse_duration
from .fields import (
    DNS_LABEL_PATTERN,
    DatasetVersion,
    DnsLabel,
    Duration,
    ModelName,
    ModelUri,
    NonEmptyStr,
    PinnedFilter,
    PinnedRevision,
    Quantity,
    Score,
    Sha256Digest,
    cel,
    error_at,
)

GROUP = "finetune.dev"
VERSION = "v1alpha1"
KIND = "FineTuneRelease"
PLURAL = "finetunereleases"
API_VERSION = f"{GROUP}/{VERSION}"

MAX_STAGES = 16
MAX_METRICS = 16
MAX_SCORES = 32


def _rules(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(entries)}


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are errors (the apiserver's
    strict field validation refuses them too)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", allow_inf_nan=False
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as it appears in YAML: camelCase keys, defaults explicit, unset omitted."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# ---- bundle: everything that decides behaviour; its digest is the revision ------------------


class BaseModelRef(ApiModel):
    name: NonEmptyStr = Field(description="The base model's name, e.g. acme/llama-3.1-8b-instruct.")
    revision: PinnedRevision = Field(description="Exact revision: 40-hex commit or sha256 digest.")
    uri: ModelUri = Field(description="Where runtimes load the base model from.")


class Artifact(ApiModel):
    type: Literal["adapter", "merged"] = Field(
        description="adapter: LoRA weights loaded on the base; merged: a full model."
    )
    uri: ModelUri
    digest: Sha256Digest = Field(
        description="sha256 over the artifact's files in canonical order (see modelserver)."
    )


class Dataset(ApiModel):
    name: NonEmptyStr
    version: DatasetVersion = Field(description="An immutable snapshot: never latest/main/head.")
    filter: PinnedFilter | None = Field(
        default=None, description="The filtering code, pinned: git+<url>@<40-hex> or sha256."
    )


class Training(ApiModel):
    config_digest: Sha256Digest
    seed: int | None = Field(default=None, ge=0)


OUTPUT_FORMAT_RULES = (
    cel(
        "self.type == 'json-schema' ? has(self.schema) : !has(self.schema)",
        "schema is required when type is json-schema and allowed only then",
    ),
    cel(
        "self.type == 'regex' ? has(self.pattern) : !has(self.pattern)",
        "pattern is required when type is regex and allowed only then",
    ),
)


class OutputFormat(ApiModel):
    model_config = ConfigDict(json_schema_extra=_rules(*OUTPUT_FORMAT_RULES))

    type: Literal["text", "json", "json-schema", "regex"] = "text"
    json_schema: dict[str, Any] | None = Field(
        default=None,
        alias="schema",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
        description="The JSON Schema responses must satisfy (type json-schema).",
    )
    pattern: str | None = Field(
        default=None, max_length=4096, description="The regex responses must match (type regex)."
    )

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"is not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _fields_fit_type(self) -> OutputFormat:
        if (self.type == "json-schema") != (self.json_schema is not None):
            raise ValueError(OUTPUT_FORMAT_RULES[0]["message"])
        if (self.type == "regex") != (self.pattern is not None):
            raise ValueError(OUTPUT_FORMAT_RULES[1]["message"])
        return self


class Prompt(ApiModel):
    system: str = Field(default="", max_length=65536, description="System instructions.")
    output_format: OutputFormat = Field(default_factory=OutputFormat)


class Evals(ApiModel):
    suite: NonEmptyStr
    version: NonEmptyStr
    scores: dict[str, Score] = Field(
        default_factory=dict,
        max_length=MAX_SCORES,
        description="Offline eval scores of this bundle, by name.",
    )


class HeaderMatch(ApiModel):
    type: Literal["Exact", "RegularExpression"] = "Exact"
    name: NonEmptyStr
    value: str = Field(max_length=4096)


class PathMatch(ApiModel):
    type: Literal["Exact", "PathPrefix", "RegularExpression"] = "PathPrefix"
    value: str = Field(default="/", max_length=1024)


class RouteMatch(ApiModel):
    """The subset of Gateway API's HTTPRouteMatch a release may route on."""

    path: PathMatch | None = None
    headers: list[HeaderMatch] = Field(default_factory=list, max_length=16)
    query_params: list[HeaderMatch] = Field(default_factory=list, max_length=16)
    method: (
        Literal["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
        | None
    ) = None


class Routing(ApiModel):
    model_name: ModelName = Field(description='The OpenAI "model" clients send.')
    matches: list[RouteMatch] = Field(default_factory=list, max_length=8)


class Bundle(ApiModel):
    base_model: BaseModelRef
    artifact: Artifact
    dataset: Dataset
    training: Training
    prompt: Prompt = Field(default_factory=Prompt)
    evals: Evals
    routing: Routing


# ---- serving and traffic ---------------------------------------------------------------------


class Resources(ApiModel):
    limits: dict[str, Quantity] = Field(default_factory=dict, max_length=16)
    requests: dict[str, Quantity] = Field(default_factory=dict, max_length=16)


CANARY_REPLICAS_HELP = "must be auto or an integer of at least 1"


class Serving(ApiModel):
    runtime: Literal["builtin", "vllm"] = "builtin"
    image: str | None = Field(
        default=None, max_length=512, description="Defaulted per runtime when omitted."
    )
    replicas: int = Field(default=1, ge=1, le=1000)
    canary_replicas: Literal["auto"] | int = Field(
        default="auto",
        description="auto = ceil(replicas x weight / 100), at least 1; or a fixed count.",
        json_schema_extra={
            "x-kubernetes-int-or-string": True,
            "x-kubernetes-validations": [
                cel("type(self) == int ? self >= 1 : self == 'auto'", CANARY_REPLICAS_HELP)
            ],
        },
    )
    resources: Resources = Field(default_factory=Resources)
    port: int = Field(default=8000, ge=1, le=65535)

    @field_validator("canary_replicas", mode="before")
    @classmethod
    def _canary_replicas(cls, value: Any) -> Any:
        if value == "auto" or (
            isinstance(value, int) and not isinstance(value, bool) and value >= 1
        ):
            return value
        raise ValueError(f"{value!r}: {CANARY_REPLICAS_HELP}")


class GatewayRef(ApiModel):
    name: NonEmptyStr
    namespace: NonEmptyStr | None = None
    section_name: NonEmptyStr | None = None


TRAFFIC_RULES = (
    cel(
        "self.provider != 'gateway-api' || has(self.gateway)",
        "gateway is required when provider is gateway-api",
        field_path=".gateway",
    ),
)


class Traffic(ApiModel):
    model_config = ConfigDict(json_schema_extra=_rules(*TRAFFIC_RULES))

    provider: Literal["gateway-api", "replicas"] = "gateway-api"
    gateway: GatewayRef | None = None

    @model_validator(mode="after")
    def _gateway_present(self) -> Traffic:
        if self.provider == "gateway-api" and self.gateway is None:
            raise error_at("gateway", TRAFFIC_RULES[0]["message"])
        return self


# ---- gate ------------------------------------------------------------------------------------


class EvalGate(ApiModel):
    min_scores: dict[str, Score] = Field(
        default_factory=dict,
        max_length=MAX_SCORES,
        description="A bundle whose score is below this is Gated.",
    )
    max_regression: dict[str, Score] = Field(
        default_factory=dict,
        max_length=MAX_SCORES,
        description="Largest allowed drop of a score against the stable bundle's.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self.all(k, self[k] >= 0.0)", "regressions must be 0 or more")
            ]
        },
    )

    @field_validator("max_regression")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        if any(v < 0 for v in value.values()):
            raise ValueError("regressions must be 0 or more")
        return value


class Gate(ApiModel):
    evals: EvalGate = Field(default_factory=EvalGate)


# ---- strategy --------------------------------------------------------------------------------

STAGE_RULES = (
    cel(
        "has(self.weight) != has(self.mirror)",
        "a stage sets exactly one of weight (share of live traffic) or mirror (percent shadowed)",
    ),
    cel(
        "!has(self.maxDuration) || !has(self.duration) || "
        "duration(self.maxDuration) >= duration(self.duration)",
        "maxDuration must be at least duration",
        field_path=".maxDuration",
    ),
)


class Stage(ApiModel):
    model_config = ConfigDict(json_schema_extra=_rules(*STAGE_RULES))

    name: DnsLabel
    weight: int | None = Field(default=None, ge=0, le=100, description="Percent of live traffic.")
    mirror: int | None = Field(
        default=None, ge=1, le=100, description="Percent of requests copied to the candidate."
    )
    duration: Duration | None = Field(default=None, description="Least time in this stage.")
    max_duration: Duration | None = Field(
        default=None,
        description=(
            "With analysis: how long the stage may wait for a Pass before it is Inconclusive and "
            "pauses for a person. Default: 3 x duration, or 1h without a duration."
        ),
    )
    approval: Literal["auto", "manual"] = "auto"

    @model_validator(mode="after")
    def _weight_or_mirror(self) -> Stage:
        if (self.weight is None) == (self.mirror is None):
            raise ValueError(STAGE_RULES[0]["message"])
        if (
            self.max_duration
            and self.duration
            and parse_duration(self.max_duration) < parse_duration(self.duration)
        ):
            raise error_at("maxDuration", STAGE_RULES[1]["message"])
        return self

    @property
    def longest(self) -> timedelta:
        """How long the stage may wait for analysis to pass before it is Inconclusive."""
        if self.max_duration:
            return parse_duration(self.max_duration)
        if self.duration:
            return 3 * parse_duration(self.duration)
        return timedelta(hours=1)


def default_stages(provider: str) -> list[Stage]:
    """shadow (mirror 100, 10m), 1% 30m, 10% 1h, 100%; without shadow where the provider cannot
    mirror (replicas)."""
    stages = [
        Stage(name="shadow", mirror=100, duration="10m"),
        Stage(name="canary-1", weight=1, duration="30m"),
        Stage(name="canary-10", weight=10, duration="1h"),
        Stage(name="full", weight=100),
    ]
    return stages[1:] if provider == "replicas" else stages


STAGES_RULES = (
    cel(
        "self.all(s, self.exists_one(t, t.name == s.name))",
        "stage names must be unique",
    ),
    cel(
        "self.filter(s, has(s.weight)).map(s, s.weight).isSorted() && "
        "self.filter(s, has(s.weight)).all(s, self.filter(t, has(t.weight) && t.weight == s.weight).size() == 1)",
        "weights must increase strictly from stage to stage",
    ),
    cel(
        "has(self[size(self) - 1].weight) && self[size(self) - 1].weight == 100",
        "the last stage must have weight 100 (it promotes)",
    ),
    cel(
        "self.map(s, has(s.mirror) ? 0 : 1).isSorted()",
        "mirror stages must come before every weighted stage",
    ),
)


def check_stages(stages: list[Stage]) -> list[Stage]:
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"{STAGES_RULES[0]['message']}; repeated: {', '.join(dupes)}")
    weights = [s.weight for s in stages if s.weight is not None]
    if any(a >= b for a, b in itertools.pairwise(weights)):
        raise ValueError(f"{STAGES_RULES[1]['message']}; got {weights}")
    if stages[-1].weight != 100:
        raise ValueError(STAGES_RULES[2]["message"])
    kinds = [0 if s.mirror is not None else 1 for s in stages]
    if kinds != sorted(kinds):
        raise ValueError(STAGES_RULES[3]["message"])
    return stages


RATE_TEMPLATES = ("error-rate", "format-invalid-rate", "refusal-rate", "slow-requests")
BUILTIN_ONLY_TEMPLATES = ("format-invalid-rate", "refusal-rate")  # vLLM measures neither
# Bucket bounds (seconds) of each runtime's request-latency histogram: slow-requests counts the
# requests above one of them, so latencyBound must be one (whole seconds, as durations are).
LATENCY_BUCKETS: dict[str, tuple[float, ...]] = {
    "builtin": (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
    "vllm": (
        0.3,
        0.5,
        0.8,
        1,
        1.5,
        2,
        2.5,
        5,
        10,
        15,
        20,
        30,
        40,
        50,
        60,
        120,
        240,
        480,
        960,
        1920,
        7680,
    ),
}


def latency_bounds(runtime: str) -> list[int]:
    """The latencyBound values a runtime's histogram can answer, in seconds."""
    return [int(b) for b in LATENCY_BUCKETS[runtime] if b >= 1 and b == int(b)]


VALUE_TEMPLATES = ("tokens-per-request",)
TEMPLATES = RATE_TEMPLATES + VALUE_TEMPLATES
_RATE_TEMPLATES_CEL = "[" + ", ".join(repr(t) for t in RATE_TEMPLATES) + "]"

METRIC_RULES = (
    cel("has(self.template) != has(self.query)", "a metric sets exactly one of template or query"),
    cel(
        "!has(self.judge) || self.judge != 'sequential' || "
        f"(has(self.template) && self.template in {_RATE_TEMPLATES_CEL})",
        f"the sequential judge needs a rate template ({', '.join(RATE_TEMPLATES)}): "
        "it compares candidate and stable counts",
        field_path=".judge",
    ),
    cel(
        "!has(self.judge) || self.judge != 'threshold' || has(self.min) || has(self.max)",
        "the threshold judge needs min or max",
        field_path=".judge",
    ),
    cel(
        "(has(self.template) && self.template == 'slow-requests') == has(self.latencyBound)",
        "latencyBound is required by the slow-requests template and allowed only there",
        field_path=".latencyBound",
    ),
)


class Metric(ApiModel):
    model_config = ConfigDict(json_schema_extra=_rules(*METRIC_RULES))

    name: DnsLabel
    template: Literal[TEMPLATES] | None = Field(  # type: ignore[valid-type]
        default=None, description="A built-in query (see analysis/templates)."
    )
    query: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="PromQL; {{namespace}} {{release}} {{revision}} {{stableRevision}} {{interval}} are filled in.",
    )
    judge: Literal["sequential", "relative", "threshold"] | None = Field(
        default=None,
        description="Defaults to sequential for rate templates, threshold otherwise.",
    )
    margin: float = Field(
        default=0.1, ge=0, le=10, description="Candidate may be (1 + margin) x stable."
    )
    latency_bound: Duration | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Metric:
        if (self.template is None) == (self.query is None):
            raise ValueError(METRIC_RULES[0]["message"])
        if self.judge == "sequential" and self.template not in RATE_TEMPLATES:
            raise error_at("judge", METRIC_RULES[1]["message"])
        if self.judge == "threshold" and self.min is None and self.max is None:
            raise error_at("judge", METRIC_RULES[2]["message"])
        if (self.template == "slow-requests") != (self.latency_bound is not None):
            raise error_at("latencyBound", METRIC_RULES[3]["message"])
        return self

    @property
    def effective_judge(self) -> str:
        if self.judge is not None:
            return self.judge
        return "sequential" if self.template in RATE_TEMPLATES else "threshold"


def default_metrics() -> list[Metric]:
    return [Metric(name="errors", template="error-rate", judge="sequential", margin=0.1)]


class OnError(ApiModel):
    after: Duration = "10m"
    action: Literal["pause", "rollback"] = "pause"


METRICS_RULES = (
    cel("self.all(m, self.exists_one(n, n.name == m.name))", "metric names must be unique"),
)


class Analysis(ApiModel):
    interval: Duration = "30s"
    alpha: float = Field(
        default=0.01, gt=0, le=0.5, description="False-rollback budget for the whole rollout."
    )
    min_samples: int = Field(default=500, ge=0, description="Candidate requests a stage needs.")
    on_error: OnError = Field(default_factory=OnError)
    metrics: list[Metric] = Field(
        default_factory=default_metrics,
        min_length=1,
        max_length=MAX_METRICS,
        json_schema_extra=_rules(*METRICS_RULES),
    )

    @field_validator("metrics")
    @classmethod
    def _unique_names(cls, metrics: list[Metric]) -> list[Metric]:
        names = [m.name for m in metrics]
        if len(set(names)) != len(names):
            raise ValueError(METRICS_RULES[0]["message"])
        return metrics


class Strategy(ApiModel):
    stages: list[Stage] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_STAGES,
        description="Default: shadow (mirror 100, 10m), 1% 30m, 10% 1h, 100%.",
        json_schema_extra=_rules(*STAGES_RULES),
    )
    analysis: Analysis = Field(default_factory=Analysis)
    scale_down_delay: Duration = "10m"
    abort_scale_down_delay: Duration = "30s"
    revision_history_limit: int = Field(default=3, ge=0, le=50)

    @field_validator("stages")
    @classmethod
    def _valid_stages(cls, stages: list[Stage] | None) -> list[Stage] | None:
        return stages if stages is None else check_stages(stages)


# ---- the spec --------------------------------------------------------------------------------


def _bounds_cel(runtime: str) -> str:
    return "[" + ", ".join(f"duration('{b}s')" for b in latency_bounds(runtime)) + "]"


SPEC_RULES = (
    cel(
        "self.traffic.provider != 'replicas' || !has(self.strategy.stages) || "
        "self.strategy.stages.all(s, !has(s.mirror))",
        "the replicas provider cannot mirror traffic: remove the mirror stages or use gateway-api",
        field_path=".strategy.stages",
    ),
    cel(
        "self.gate.evals.minScores.all(k, k in self.bundle.evals.scores) && "
        "self.gate.evals.maxRegression.all(k, k in self.bundle.evals.scores)",
        "every score the gate names must be in bundle.evals.scores",
        field_path=".gate.evals",
    ),
    cel(
        "self.serving.runtime != 'vllm' || self.strategy.analysis.metrics.all(m, "
        f"!has(m.template) || !(m.template in {list(BUILTIN_ONLY_TEMPLATES)!r}))",
        f"{' and '.join(BUILTIN_ONLY_TEMPLATES)} are measured by the builtin runtime only; "
        "with vllm use a custom query",
        field_path=".strategy.analysis.metrics",
    ),
    cel(
        "self.strategy.analysis.metrics.all(m, !has(m.latencyBound) || "
        f"(self.serving.runtime == 'vllm' ? {_bounds_cel('vllm')} : {_bounds_cel('builtin')})"
        ".exists(b, b == duration(m.latencyBound)))",
        "latencyBound must be a bucket bound of the runtime's latency histogram "
        f"(builtin: {', '.join(f'{b}s' for b in latency_bounds('builtin'))}; "
        f"vllm: {', '.join(f'{b}s' for b in latency_bounds('vllm'))})",
        field_path=".strategy.analysis.metrics",
    ),
)


class FineTuneReleaseSpec(ApiModel):
    model_config = ConfigDict(json_schema_extra=_rules(*SPEC_RULES))

    bundle: Bundle
    serving: Serving = Field(default_factory=Serving)
    traffic: Traffic = Field(
        description="Where traffic is split: a Gateway API gateway or replicas."
    )
    gate: Gate = Field(default_factory=Gate)
    strategy: Strategy = Field(default_factory=Strategy)
    paused: StrictBool = Field(default=False, description="Hold the rollout where it is.")

    @model_validator(mode="after")
    def _cross_field(self) -> FineTuneReleaseSpec:
        stages = self.strategy.stages
        if self.traffic.provider == "replicas" and stages and any(s.mirror for s in stages):
            raise error_at("strategy.stages", SPEC_RULES[0]["message"])
        runtime = self.serving.runtime
        for metric in self.strategy.analysis.metrics:
            if runtime == "vllm" and metric.template in BUILTIN_ONLY_TEMPLATES:
                raise error_at(
                    "strategy.analysis.metrics", f"{metric.name}: {SPEC_RULES[2]['message']}"
                )
            bound = metric.latency_bound
            if bound is not None and (
                parse_duration(bound).total_seconds() not in latency_bounds(runtime)
            ):
                raise error_at(
                    "strategy.analysis.metrics",
                    f"{metric.name}: {SPEC_RULES[3]['message']}; got {bound}",
                )
        known = self.bundle.evals.scores
        for field, names in (
            ("minScores", self.gate.evals.min_scores),
            ("maxRegression", self.gate.evals.max_regression),
        ):
            unknown = sorted(set(names) - set(known))
            if unknown:
                raise error_at(
                    "gate.evals",
                    f"{SPEC_RULES[1]['message']}; {field} names {', '.join(unknown)}"
                    f" (known: {', '.join(sorted(known)) or 'none'})",
                )
        return self

    @property
    def stages(self) -> list[Stage]:
        """The stages in force: the spec's, or the defaults for the traffic provider."""
        return self.strategy.stages or default_stages(self.traffic.provider)


# ---- status ----------------------------------------------------------------------------------

Phase = Literal[
    "Pending", "Gated", "Shadow", "Progressing", "Paused", "Promoted", "RolledBack", "Failed"
]
Outcome = Literal["Pass", "Fail", "NoData", "Error", "Inconclusive"]


class StatusModel(BaseModel):
    """Status is written by the operator only; older or newer fields are ignored, not errors."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StageStatus(StatusModel):
    index: int
    name: str
    weight: int = 0
    mirror: int = 0
    started_at: datetime | None = Field(
        default=None, description="When the stage's route was observed in place; its clock."
    )
    approved: bool = Field(default=False, description="Manual approval given for this stage.")
    hold: str | None = Field(
        default=None,
        description="Why the operator paused this stage for a person (Inconclusive, onError).",
    )
    inconclusive: bool = Field(
        default=False, description="Held because the stage ran out of time without a Pass."
    )
    waiting_since: datetime | None = Field(
        default=None,
        description=(
            "Where the maxDuration clock starts: the stage's start, moved on by a resume and by "
            "the length of each analysis outage (time without metrics is not waiting for a Pass)."
        ),
    )
    # The analysis clock: counts are measured over [analyzedUntil, now), never twice.
    analyzed_until: datetime | None = None
    next_analysis_at: datetime | None = None
    error_since: datetime | None = Field(
        default=None, description="Analysis has been failing (Error) since then."
    )
    errors: int = Field(default=0, description="Failed analysis attempts in a row (backoff).")


class MetricResult(StatusModel):
    metric: str
    outcome: Outcome
    value: float | None = None
    stable_value: float | None = None
    evidence: float | None = Field(default=None, description="The e-value (sequential judge).")
    samples: int | None = Field(default=None, description="Candidate requests, whole rollout.")
    stage_samples: int | None = Field(default=None, description="Candidate requests, this stage.")
    message: str | None = None
    # The sequential judge's state, carried across the stages of one candidate.
    log_evidence: float | None = None
    evidence_components: list[float] | None = Field(
        default=None, description="log e-value of each component of the mixture (judges.py)."
    )
    candidate_bad: float | None = None
    stable_bad: float | None = None
    candidate_total: float | None = None
    stable_total: float | None = None


class Condition(StatusModel):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: datetime | None = None
    observed_generation: int | None = None


class HistoryEntry(StatusModel):
    revision: str
    bundle: dict[str, str] = Field(default_factory=dict, description="A one-line summary.")
    outcome: str
    reason: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None


class RetiredRevision(StatusModel):
    """A revision that no longer serves: kept warm for `scaleDownAfterSeconds`, then at zero
    replicas until it falls out of `revisionHistoryLimit` and its objects are deleted."""

    revision: str
    since: datetime
    scale_down_after_seconds: int = 0


class FineTuneReleaseStatus(StatusModel):
    observed_generation: int | None = None
    phase: Phase | None = None
    message: str | None = None
    stable_revision: str | None = None
    stable_bundle: dict[str, Any] | None = Field(
        default=None,
        description="The stable revision's bundle (its evals and routing are compared against).",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    candidate_revision: str | None = None
    candidate_since: datetime | None = Field(
        default=None, description="When the current candidate's rollout began."
    )
    stage: StageStatus | None = None
    analysis: list[MetricResult] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list)
    retired: list[RetiredRevision] = Field(default_factory=list)


MAX_NAME_LENGTH = 52
NAME_HELP = (
    f"must be a DNS label of at most {MAX_NAME_LENGTH} characters: owned objects are named "
    "<name>-<10-char revision>"
)


class ObjectMeta(BaseModel):
    """Only what validation needs; the apiserver owns the rest."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = None

    @field_validator("name")
    @classmethod
    def _dns_subdomain(cls, name: str) -> str:
        # Owned objects are named <release>-<revision>, which must stay a DNS label.
        if not re.fullmatch(DNS_LABEL_PATTERN, name) or len(name) > MAX_NAME_LENGTH:
            raise ValueError(NAME_HELP)
        return name


class FineTuneRelease(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    api_version: Literal["finetune.dev/v1alpha1"]
    kind: Literal["FineTuneRelease"]
    metadata: ObjectMeta
    spec: FineTuneReleaseSpec
    status: FineTuneReleaseStatus | None = None
