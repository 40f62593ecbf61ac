"""The bundle: everything that decides behaviour (base model, artifact, dataset, training, prompt,
evals, routing); its digest is the revision."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from .base import MAX_SCORES, ApiModel, cel_rules
from .fields import (
    ConfigMapKeyName,
    DatasetVersion,
    DnsSubdomain,
    ModelName,
    ModelUri,
    NonEmptyStr,
    PinnedFilter,
    PinnedRevision,
    Score,
    Sha256Digest,
    cel,
)


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
    rank: int | None = Field(
        default=None,
        ge=1,
        le=512,
        description=(
            "A LoRA adapter's rank (r in adapter_config.json). vLLM needs it to size its LoRA "
            "slots (--max-lora-rank); without it vLLM's default, 16, must be enough."
        ),
    )


PINNED_IMAGE = r"^[^\s@]+@sha256:[0-9a-f]{64}$"


class RuntimeImage(ApiModel):
    image: str = Field(
        max_length=512,
        pattern=PINNED_IMAGE,
        description=(
            "The runtime's container image pinned by digest (repository@sha256:<64 hex>), so a "
            "runtime upgrade is a new revision rolled out through the stages."
        ),
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
    model_config = ConfigDict(json_schema_extra=cel_rules(*OUTPUT_FORMAT_RULES))

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


ESCALATION_RULES = (
    cel(
        "[has(self.jsonField), has(self.toolCall), has(self.pattern)].filter(x, x).size() == 1",
        "an escalation rule sets exactly one of jsonField, toolCall or pattern",
    ),
)


class Escalation(ApiModel):
    """Which answers the model hands to a human (counted as escalations, judged by the
    escalation-rate template)."""

    model_config = ConfigDict(json_schema_extra=cel_rules(*ESCALATION_RULES))

    json_field: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="An answer that is a JSON object whose top-level field of this name is true.",
    )
    tool_call: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="An answer that calls the tool of this name.",
    )
    pattern: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="An answer in which this regular expression is found.",
    )

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        return OutputFormat._pattern_compiles(value)

    @model_validator(mode="after")
    def _one_rule(self) -> Escalation:
        if sum(v is not None for v in (self.json_field, self.tool_call, self.pattern)) != 1:
            raise ValueError(ESCALATION_RULES[0]["message"])
        return self


class Prompt(ApiModel):
    system: str = Field(default="", max_length=65536, description="System instructions.")
    output_format: OutputFormat = Field(default_factory=OutputFormat)
    escalation: Escalation | None = Field(
        default=None, description="Which answers hand the conversation to a human."
    )


# What the built-in evaluator (ftrelease.evals) measures; every score is a number per suite run.
BUILTIN_SCORES = {
    "exact_match": "share of answers equal to the expected one",
    "normalized_match": "share equal after case, whitespace and punctuation are normalised",
    "format_valid": "share of answers that satisfy prompt.outputFormat (the shared checks)",
    "refusal_rate": "share of answers that refuse",
    "mean_tokens": "mean completion tokens per answer",
}
ONE_SOURCE = cel(
    "[has(self.configMap), has(self.uri)].filter(x, x).size() == 1",
    "the cases come from exactly one of configMap or uri",
)
ONE_EVALUATOR = cel(
    "[has(self.builtin), has(self.container)].filter(x, x).size() == 1",
    "an eval run sets exactly one of builtin or container",
)


class ConfigMapKey(ApiModel):
    name: DnsSubdomain
    key: ConfigMapKeyName = "cases.jsonl"


class EvalCases(ApiModel):
    """JSON lines, one case each: {"messages": [...]} or {"prompt": "..."}, and "expected"."""

    model_config = ConfigDict(json_schema_extra=cel_rules(ONE_SOURCE))

    config_map: ConfigMapKey | None = Field(
        default=None, description="A ConfigMap in the release's namespace, and its key."
    )
    uri: ModelUri | None = Field(
        default=None,
        description="A file on the models volume: pvc://<claim>/<path> (or file:// locally).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> EvalCases:
        if (self.config_map is None) == (self.uri is None):
            raise ValueError(ONE_SOURCE["message"])
        return self


class BuiltinEvaluator(ApiModel):
    cases: EvalCases
    max_tokens: int = Field(default=64, ge=1, le=4096, description="Per answer.")


class EnvVar(ApiModel):
    name: NonEmptyStr
    value: str = Field(default="", max_length=4096)


class ContainerEvaluator(ApiModel):
    """Your own evaluator. It finds the server in FINETUNE_EVAL_BASE_URL (OpenAI API, .../v1) and
    FINETUNE_EVAL_MODEL, and writes its result to /dev/termination-log as JSON: {"scores":
    {name: number}} and, optionally, "suite", "version" and "cases" (docs/evals.md)."""

    image: NonEmptyStr = Field(description="Pin it by digest: it decides what the gate sees.")
    command: list[str] = Field(default_factory=list, max_length=64)
    args: list[str] = Field(default_factory=list, max_length=256)
    env: list[EnvVar] = Field(default_factory=list, max_length=64)


class EvalRun(ApiModel):
    """How the suite is measured in the cluster, on the candidate and the stable alike, before
    any traffic."""

    model_config = ConfigDict(json_schema_extra=cel_rules(ONE_EVALUATOR))

    builtin: BuiltinEvaluator | None = None
    container: ContainerEvaluator | None = None

    @model_validator(mode="after")
    def _one_evaluator(self) -> EvalRun:
        if (self.builtin is None) == (self.container is None):
            raise ValueError(ONE_EVALUATOR["message"])
        return self


class Evals(ApiModel):
    suite: NonEmptyStr
    version: NonEmptyStr
    scores: dict[str, Score] = Field(
        default_factory=dict,
        max_length=MAX_SCORES,
        description=(
            "Scores declared for this bundle, by name. With `run`, the measured ones are judged "
            "and these are checked against them (gate.evals.tolerance)."
        ),
    )
    run: EvalRun | None = Field(
        default=None,
        description="Measure the suite in the cluster (a Job) instead of trusting `scores`.",
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
    runtime: RuntimeImage | None = Field(
        default=None,
        description="The runtime's image, as part of the revision (default: serving.image).",
    )
