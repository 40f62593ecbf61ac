"""The spec of a FineTuneRelease: the bundle, serving, traffic, the eval gate and the strategy,
with the rules that cross them."""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import ConfigDict, Field, StrictBool, field_validator, model_validator

from .base import MAX_SCORES, ApiModel, cel_rules
from .bundle import BUILTIN_SCORES, Bundle
from .fields import Duration, NonEmptyStr, Quantity, Score, cel, error_at
from .notifications import Notifications
from .route import CAPABILITIES
from .strategy import MAX_STAGES, Stage, Strategy, default_stages

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
    port: int = Field(
        default=8000,
        ge=1,
        le=65534,
        description="The serving port; the builtin admin port is port + 1.",
    )

    def canary_pods(self, share: int) -> int:
        """The candidate's pods for a stage sending it `share`% (weight or mirror): every pod
        from 100%; a fixed canaryReplicas as given; auto ceil(replicas x share / 100), at least
        1, so a 1% canary holds one pod rather than a full set of GPUs."""
        if share >= 100:
            return self.replicas
        if self.canary_replicas != "auto":
            return min(int(self.canary_replicas), self.replicas)
        return max(1, math.ceil(self.replicas * share / 100))

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
    approximate_splits: StrictBool = Field(
        default=False,
        description=(
            "replicas provider: accept stage weights that the replica counts can only "
            "approximate (the candidate's share is its pods over all pods)."
        ),
    )

    @model_validator(mode="after")
    def _gateway_present(self) -> Traffic:
        if self.provider == "gateway-api" and self.gateway is None:
            raise error_at("gateway", TRAFFIC_RULES[0]["message"])
        return self


# ---- gate ------------------------------------------------------------------------------------


NON_NEGATIVE = cel("self.all(k, self[k] >= 0.0)", "allowances must be 0 or more")


class EvalGate(ApiModel):
    """What the candidate's eval scores must satisfy before it gets any traffic. With
    bundle.evals.run the measured scores are judged (declared ones otherwise); comparisons with
    the stable take the stable's scores from the same suite and version, or fail closed."""

    min_scores: dict[str, Score] = Field(
        default_factory=dict,
        max_length=MAX_SCORES,
        description="A candidate whose score is below this is Gated.",
    )
    max_scores: dict[str, Score] = Field(
        default_factory=dict,
        max_length=MAX_SCORES,
        description="A candidate whose score is above this is Gated (rates such as refusal_rate).",
    )
    max_regression: dict[str, Score] = Field(
        default_factory=dict,
        max_length=MAX_SCORES,
        description="Largest allowed drop of a score against the stable's (higher is better).",
        json_schema_extra=cel_rules(NON_NEGATIVE),
    )
    max_increase: dict[str, Score] = Field(
        default_factory=dict,
        max_length=MAX_SCORES,
        description="Largest allowed rise of a score against the stable's (lower is better).",
        json_schema_extra=cel_rules(NON_NEGATIVE),
    )
    tolerance: float = Field(
        default=0.02,
        ge=0,
        description="How far a declared score may be from the measured one before it is reported.",
    )
    accept_incomparable: StrictBool = Field(
        default=False,
        description=(
            "Let a candidate pass when the stable has no scores from the same suite and version "
            "(the comparisons are then skipped, and status says so). Off: such a candidate is "
            "Gated as not comparable."
        ),
    )
    measure_stable: StrictBool = Field(
        default=True,
        description=(
            "Run the candidate's suite against the stable too when the stable has no measured "
            "result from that suite and version (only when a comparison needs it). Off: only "
            "results the stable already has are compared, and a new suite or version is not "
            "comparable."
        ),
    )
    deadline: Duration = Field(
        default="15m", description="How long one eval Job may run (activeDeadlineSeconds)."
    )
    retries: int = Field(
        default=1, ge=0, le=10, description="Retries of a failing eval pod (backoffLimit)."
    )

    @field_validator("max_regression", "max_increase")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        if any(v < 0 for v in value.values()):
            raise ValueError(NON_NEGATIVE["message"])
        return value

    def named(self) -> dict[str, dict[str, float]]:
        """Every score the gate names, by the field that names it."""
        return {
            "minScores": self.min_scores,
            "maxScores": self.max_scores,
            "maxRegression": self.max_regression,
            "maxIncrease": self.max_increase,
        }


class Gate(ApiModel):
    evals: EvalGate = Field(default_factory=EvalGate)


# ---- the spec --------------------------------------------------------------------------------


# The replicas provider splits by pod counts: the candidate's share of a stage is its pods over
# all pods. A stage below 100% must leave the stable a pod and give the candidate between half
# and twice the stage's weight, unless the release accepts approximate splits.
_R, _K = "self.serving.replicas", "self.serving.canaryReplicas"


def _cel_canary_pods(weight: str) -> str:
    auto = f"({_R} * {weight} + 99) / 100"
    return f"(type({_K}) == int ? ({_K} < {_R} ? {_K} : {_R}) : ({auto} > 1 ? {auto} : 1))"


def _cel_split_ok(weight: str) -> str:
    pods = _cel_canary_pods(weight)
    return (
        f"({pods} < {_R} && {pods} * 100 <= 2 * {weight} * {_R} && "
        f"2 * {pods} * 100 >= {weight} * {_R})"
    )


def _cel_gate_names_in(known: str) -> str:
    fields = ("minScores", "maxScores", "maxRegression", "maxIncrease")
    return " && ".join(f"self.gate.evals.{f}.all(k, k in {known})" for f in fields)


SPLIT_HELP = (
    "with the replicas provider a stage's share is the candidate's pods over all pods "
    "(canaryReplicas auto: ceil(replicas x weight / 100)); a stage below 100% must leave the "
    "stable at least one pod and give the candidate between half and twice its weight: add "
    "replicas, change the weights, use the gateway-api provider, or set "
    "traffic.approximateSplits: true"
)


def _cel_split_message() -> str:
    """Names the first stage whose weight the pods cannot give. One test per index, not
    filter(): the cost estimate loses a filtered element's length bound, and with it the
    message's (nor string() of a number: unbounded too)."""
    stages = "self.strategy.stages"
    tests = []
    for i in range(MAX_STAGES):
        weight = f"{stages}[{i}].weight"
        tests.append(
            f"size({stages}) > {i} && has({weight}) && {weight} < 100 && "
            f"!{_cel_split_ok(weight)} ? 'stage ' + {stages}[{i}].name + "
            "' cannot get its weight from serving.replicas; ' :"
        )
    return (
        f"(has({stages}) ? ({' '.join(tests)} '') : "
        f"'the default stages cannot be split over serving.replicas; ') + {json.dumps(SPLIT_HELP)}"
    )


IMAGE_TWICE = cel(
    "!has(self.bundle.runtime) || !has(self.serving.image)",
    "the runtime image is set twice: keep bundle.runtime.image (pinned, part of the revision) "
    "and remove serving.image",
    field_path=".serving.image",
)
NOTHING_KEPT_WARM = cel(
    "self.traffic.provider != 'replicas' || !has(self.strategy.keepPreviousStable) || "
    "!has(self.strategy.keepPreviousStable.replicas) || "
    "self.strategy.keepPreviousStable.replicas == 0",
    "the replicas provider sends live traffic to every pod of the release, so a previous "
    "stable cannot be kept warm: set 0 or use traffic.provider gateway-api",
    field_path=".strategy.keepPreviousStable.replicas",
)
SPEC_RULES = (
    cel(
        "self.traffic.provider != 'replicas' || !has(self.strategy.stages) || "
        "self.strategy.stages.all(s, !has(s.mirror))",
        "the replicas provider cannot mirror traffic: remove the mirror stages or use gateway-api",
        field_path=".strategy.stages",
    ),
    cel(
        "has(self.bundle.evals.run) ? (!has(self.bundle.evals.run.builtin) || "
        + _cel_gate_names_in(repr(sorted(BUILTIN_SCORES)))
        + ") : "
        + _cel_gate_names_in("self.bundle.evals.scores"),
        "every score the gate names must be one the bundle has: in bundle.evals.scores, or, "
        f"with the built-in evaluator, one it measures ({', '.join(BUILTIN_SCORES)})",
        field_path=".gate.evals",
    ),
    cel(
        "self.traffic.provider != 'replicas' || self.traffic.approximateSplits || "
        "(has(self.strategy.stages) ? self.strategy.stages.all(s, !has(s.weight) || "
        f"s.weight >= 100 || {_cel_split_ok('s.weight')}) : "
        f"{_R} >= 2 && (type({_K}) == int ? {_K} < {_R} : true))",
        SPLIT_HELP,
        field_path=".strategy.stages",
        message_expression=_cel_split_message(),
    ),
    IMAGE_TWICE,
    NOTHING_KEPT_WARM,
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
    notifications: Notifications = Field(default_factory=Notifications)

    @model_validator(mode="after")
    def _cross_field(self) -> FineTuneReleaseSpec:
        stages = self.strategy.stages
        can_mirror = CAPABILITIES[self.traffic.provider].mirror
        if not can_mirror and stages and any(s.mirror for s in stages):
            raise error_at("strategy.stages", SPEC_RULES[0]["message"])
        self._check_replica_split()
        if self.bundle.runtime is not None and self.serving.image is not None:
            raise error_at("serving.image", IMAGE_TWICE["message"])
        kept = self.strategy.keep_previous_stable.replicas
        if self.traffic.provider == "replicas" and kept:
            raise error_at("strategy.keepPreviousStable.replicas", NOTHING_KEPT_WARM["message"])
        run = self.bundle.evals.run
        if run is None:
            known = set(self.bundle.evals.scores)
        else:
            known = set(BUILTIN_SCORES) if run.builtin is not None else None
        for field, names in self.gate.evals.named().items():
            if known is None:  # your own evaluator: whatever it writes
                break
            unknown = sorted(set(names) - known)
            if unknown:
                raise error_at(
                    "gate.evals",
                    f"{SPEC_RULES[1]['message']}; {field} names {', '.join(unknown)}"
                    f" (known: {', '.join(sorted(known)) or 'none'})",
                )
        return self

    def _check_replica_split(self) -> None:
        if self.traffic.provider != "replicas" or self.traffic.approximate_splits:
            return
        replicas = self.serving.replicas
        path = "strategy.stages"  # as the CEL rule's fieldPath, defaulted stages or not
        if not self.strategy.stages and self.serving.canary_pods(1) >= replicas:
            raise error_at(
                path, f"the default stages: {replicas} replicas cannot be split; {SPLIT_HELP}"
            )
        for stage in self.stages:
            weight = stage.weight
            if weight is None or weight >= 100:
                continue
            pods = self.serving.canary_pods(weight)
            share = 100 * pods / replicas
            if pods >= replicas or share > 2 * weight or 2 * share < weight:
                raise error_at(
                    path,
                    f"stage {stage.name}: weight {weight}% with {replicas} replicas sends "
                    f"{share:.0f}% of traffic to the candidate ({pods} of {replicas} pods); "
                    f"{SPLIT_HELP}",
                )

    @property
    def kept_previous_pods(self) -> int:
        """The pods a previous stable keeps after scaleDownDelay (keepPreviousStable)."""
        kept = self.strategy.keep_previous_stable.replicas
        if kept is None:
            kept = 0 if CAPABILITIES[self.traffic.provider].split_follows_replicas else 1
        return min(kept, self.serving.replicas)

    @property
    def stages(self) -> list[Stage]:
        """The stages in force: the spec's, or the defaults for the traffic provider."""
        one_pod = 100 * self.serving.canary_pods(1) // self.serving.replicas
        return self.strategy.stages or default_stages(self.traffic.provider, one_pod)
