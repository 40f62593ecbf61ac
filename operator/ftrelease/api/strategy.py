"""The rollout strategy: stages (weights and mirrors), analysis (metrics, their built-in
templates and the runtimes' latency buckets), scale-down delays and revision history."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from .base import ApiModel, cel_rules
from .durations import parse_duration
from .fields import DnsLabel, Duration, cel, error_at
from .route import CAPABILITIES

MAX_STAGES = 16
MAX_METRICS = 16

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
    model_config = ConfigDict(json_schema_extra=cel_rules(*STAGE_RULES))

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


def default_stages(provider: str, one_pod_share: int = 1) -> list[Stage]:
    """shadow (mirror 100, 10m), 1% 30m, 10% 1h, 100%; where the split follows replica counts
    (the replicas provider, which cannot mirror either) each canary weight is at least the share
    one candidate pod takes (`one_pod_share`), so the defaults are weights the pods can give."""
    stages = [
        Stage(name="shadow", mirror=100, duration="10m"),
        Stage(name="canary-1", weight=1, duration="30m"),
        Stage(name="canary-10", weight=10, duration="1h"),
        Stage(name="full", weight=100),
    ]
    if CAPABILITIES[provider].mirror:
        return stages
    canaries = sorted({max(s.weight or 0, one_pod_share) for s in stages[1:3]} - {0, 100})
    return [
        *(Stage(name=f"canary-{w}", weight=w, duration=stages[1].duration) for w in canaries),
        stages[-1],
    ]


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


RATE_TEMPLATES = (
    "error-rate",
    "format-invalid-rate",
    "refusal-rate",
    "escalation-rate",
    "slow-requests",
)
# Bucket bounds (seconds) of the request-latency histogram that every runtime's answers are
# measured with (ftrelease.checks: the builtin server's own, the response checker's beside
# vLLM): slow-requests counts the requests above one of them, so latencyBound must be one
# (whole seconds, as durations are).
LATENCY_BUCKETS: tuple[float, ...] = (
    0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 5, 8, 10, 15, 20, 30, 60, 120, 240, 480, 960,
)  # fmt: skip


def latency_bounds() -> list[int]:
    """The latencyBound values the latency histogram can answer, in seconds."""
    return [int(b) for b in LATENCY_BUCKETS if b >= 1 and b == int(b)]


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
    cel(
        "!has(self.latencyBound) || ["
        + ", ".join(f"duration('{b}s')" for b in latency_bounds())
        + "].exists(b, b == duration(self.latencyBound))",
        "latencyBound must be a bucket bound of the latency histogram "
        f"({', '.join(f'{b}s' for b in latency_bounds())})",
        field_path=".latencyBound",
    ),
)


class Metric(ApiModel):
    model_config = ConfigDict(json_schema_extra=cel_rules(*METRIC_RULES))

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
        bound = self.latency_bound
        if bound is not None and parse_duration(bound).total_seconds() not in latency_bounds():
            raise error_at("latencyBound", f"{METRIC_RULES[4]['message']}; got {bound}")
        return self

    @property
    def effective_judge(self) -> str:
        if self.judge is not None:
            return self.judge
        return "sequential" if self.template in RATE_TEMPLATES else "threshold"


def default_metrics() -> list[Metric]:
    return [Metric(name="errors", template="error-rate", judge="sequential", margin=0.1)]


class KeepPreviousStable(ApiModel):
    replicas: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Pods the previous stable keeps once scaleDownDelay is over (at most "
            "serving.replicas). A rollback to it moves all traffic as soon as it has this many "
            "ready pods, and scales it back up at the same time. Default 1; 0 with the replicas "
            "provider, whose Service would send a kept pod live traffic."
        ),
    )
    duration: Duration = Field(
        default="24h", description="How long after the promotion it keeps them; then zero."
    )


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
        json_schema_extra=cel_rules(*METRICS_RULES),
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
        json_schema_extra=cel_rules(*STAGES_RULES),
    )
    analysis: Analysis = Field(default_factory=Analysis)
    scale_down_delay: Duration = Field(
        default="10m",
        description="How long the previous stable keeps all its pods after a promotion.",
    )
    keep_previous_stable: KeepPreviousStable = Field(
        default_factory=KeepPreviousStable,
        description="Pods the previous stable keeps after scaleDownDelay, for a quick rollback.",
    )
    abort_scale_down_delay: Duration = "30s"
    revision_history_limit: int = Field(default=3, ge=0, le=50)
    progress_deadline: Duration = Field(
        default="10m",
        description=(
            "How long the candidate may take to have the ready pods a stage needs; past it the "
            "release is Stalled with the reason read from its pods, and onProgressDeadline acts."
        ),
    )
    on_progress_deadline: Literal["pause", "rollback"] = Field(
        default="pause",
        description="pause: hold for a person (resume waits again); rollback: back to stable.",
    )

    @field_validator("stages")
    @classmethod
    def _valid_stages(cls, stages: list[Stage] | None) -> list[Stage] | None:
        return stages if stages is None else check_stages(stages)
