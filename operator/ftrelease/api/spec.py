"""The spec of a FineTuneRelease: the bundle, serving, traffic, the eval gate and the strategy,
with the rules that cross them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, StrictBool, field_validator, model_validator

from .base import MAX_SCORES, ApiModel, cel_rules
from .bundle import Bundle
from .durations import parse_duration
from .fields import NonEmptyStr, Quantity, Score, cel, error_at
from .route import CAPABILITIES
from .strategy import BUILTIN_ONLY_TEMPLATES, Stage, Strategy, default_stages, latency_bounds

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
    model_config = ConfigDict(json_schema_extra=cel_rules(*TRAFFIC_RULES))

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
    model_config = ConfigDict(json_schema_extra=cel_rules(*SPEC_RULES))

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
        can_mirror = CAPABILITIES[self.traffic.provider].mirror
        if not can_mirror and stages and any(s.mirror for s in stages):
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
